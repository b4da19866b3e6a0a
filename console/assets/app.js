// The Breakwater console: a small single-page app over the admin API.
// Routes live in the fragment (#/, #/breaker/<scope>, #/incidents,
// #/incident/<id>, #/approvals, #/appeals, #/audit). A person signs in either through the company's
// identity provider (a session cookie the page never sees; writes carry the
// session's CSRF token) or with a bearer token, which stays in this tab's
// sessionStorage and is sent as the Authorization header. Nothing is loaded
// from anywhere but the daemon that served the page.
"use strict";

const TOKEN_KEY = "breakwater.token";
const ROLES = ["viewer", "reviewer", "operator", "admin"];
const STATE_ORDER = { forced_open: 0, open: 1, probation: 2, shadow: 3, forced_closed: 4, closed: 5 };
const POLL_MS = 2000;       // breakers and incidents
const HISTORY_MS = 15000;   // sparklines and the chart
const BREAKDOWN_MS = 5000;  // an incident's breakdown, while it grows
const STALE_MS = 10000;     // after this long without an answer the page says so

const app = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  me: null,          // {name, role}
  settings: { confirm_above: 100, history_step: "15s" },
  lastOK: 0,         // when the API last answered
  timers: [],        // the current view's timers
  view: 0,           // increments on every route change; stale callbacks check it
  board: { sort: "state", filter: "", only: "all" },
};

// ---- helpers ---------------------------------------------------------------

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat(Infinity)) {
    if (k === undefined || k === null || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

// put replaces the children of parent with kids, flattening arrays and
// skipping null, undefined and false.
function put(parent, ...kids) {
  parent.replaceChildren(...kids.flat(3).filter((k) => k !== undefined && k !== null && k !== false)
    .map((k) => (k instanceof Node ? k : document.createTextNode(String(k)))));
}

// add appends kids to parent likewise.
function add(parent, ...kids) {
  const box = document.createElement("div");
  put(box, ...kids);
  parent.append(...box.childNodes);
}

function svgEl(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function num(v, digits) {
  if (v === undefined || v === null || Number.isNaN(v)) return "–";
  const d = digits === undefined ? (Math.abs(v) >= 100 ? 0 : 1) : digits;
  return Number(v).toLocaleString("en-US", { maximumFractionDigits: d });
}

function ago(t) {
  if (!t || String(t).startsWith("0001")) return "never changed";
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  if (s < 60) return Math.floor(s) + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + Math.floor(s % 60) + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
}

// dur shortens a Go duration string: 1m0s -> 1m, 1h0m0s -> 1h.
function dur(s) {
  return String(s || "").replace(/m0s$/, "m").replace(/h0m$/, "h");
}

// seconds reads a Go duration string (1h0m0s, 15s) as seconds.
function seconds(s) {
  let t = 0;
  for (const [, v, u] of String(s || "").matchAll(/([\d.]+)(h|m|s)/g)) t += parseFloat(v) * { h: 3600, m: 60, s: 1 }[u];
  return t;
}

function when(t) {
  if (!t || t.startsWith("0001")) return "–";
  return new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function may(role) {
  return app.me && ROLES.indexOf(app.me.role) >= ROLES.indexOf(role);
}

function stateBadge(s) {
  return el("span", { class: "state " + s, text: (s || "").replace("_", " ") });
}

function every(ms, fn) {
  const view = app.view;
  const tick = async () => {
    if (view !== app.view) return;
    try { await fn(); } catch (e) { showError(e); }
    if (view === app.view) app.timers.push(setTimeout(tick, ms));
  };
  tick();
}

function clearTimers() {
  for (const t of app.timers) clearTimeout(t);
  app.timers = [];
}

function showError(e) {
  const b = document.getElementById("banner");
  b.className = "banner";
  b.textContent = e && e.message ? e.message : String(e);
  b.hidden = false;
}

function showNote(msg) {
  const b = document.getElementById("banner");
  b.className = "banner ok";
  b.textContent = msg;
  b.hidden = false;
}

function clearBanner() {
  document.getElementById("banner").hidden = true;
}

class APIError extends Error {
  constructor(status, message) {
    super(status + ": " + message);
    this.status = status;
  }
}

async function call(method, path, body, asText) {
  const opts = { method, headers: { Accept: asText ? "image/svg+xml" : "application/json" } };
  if (app.token) {
    opts.headers.Authorization = "Bearer " + app.token;
  } else if (method !== "GET") {
    // Signed in through the identity provider or a proxy: the session's
    // CSRF token (any value behind a proxy) proves the page is ours.
    opts.headers["X-CSRF-Token"] = (app.me && app.me.csrf_token) || "1";
  }
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (e) {
    throw new Error("cannot reach the daemon: " + e.message);
  }
  if (resp.status === 401) {
    signOut(app.token ? "Your token was refused; sign in again." : "Your session ended; sign in again.");
    throw new APIError(401, "not signed in");
  }
  const text = await resp.text();
  if (!resp.ok) {
    let msg = text;
    try { msg = JSON.parse(text).error || text; } catch (_) { /* not JSON */ }
    throw new APIError(resp.status, msg);
  }
  app.lastOK = Date.now();
  if (asText) return text;
  const data = JSON.parse(text);
  // 202: the change needs a second person; the answer is the approval request.
  if (resp.status === 202) data.approvalRequested = true;
  return data;
}

const get = (p) => call("GET", p);
const post = (p, b) => call("POST", p, b);
const enc = encodeURIComponent;

// ---- shell -----------------------------------------------------------------

async function signOut(msg) {
  const me = app.me;
  sessionStorage.removeItem(TOKEN_KEY);
  app.token = "";
  app.me = null;
  clearTimers();
  app.view++; // answers still on their way belong to the page signed out of
  if (me && me.via === "oidc") {
    // End the session on the daemon too; the cookie is HttpOnly.
    try {
      await fetch("/auth/logout", { method: "POST", headers: { "X-CSRF-Token": me.csrf_token || "" } });
    } catch (_) { /* the session expires by itself */ }
  }
  location.hash = "#/login";
  if (msg) showError(msg);
}

function renderShell() {
  const signedIn = !!app.me;
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("live").hidden = !signedIn;
  document.getElementById("signout").hidden = !signedIn;
  const who = document.getElementById("who");
  who.hidden = !signedIn;
  if (signedIn) who.textContent = app.me.name + " · " + app.me.role;
  const page = (location.hash.split("/")[1] || "board");
  for (const a of document.querySelectorAll("#nav a")) {
    const n = a.dataset.nav;
    a.classList.toggle("on", n === page || (n === "board" && page === "breaker") || (n === "incidents" && page === "incident"));
  }
}

// requested tells a person that the change they asked for waits for a
// second person's approval.
function requested(r) {
  showNote(`Needs a second person (${r.role} or above): approval request ${r.id} is pending until ${when(r.expires_at)}. ${r.summary}. It is listed under Approvals.`);
}

// breakGlassField is the optional break-glass reason of a change that may
// need a second person.
function breakGlassField() {
  const input = el("input", { id: "break-glass", maxlength: 1000, placeholder: "only if this cannot wait for a second person" });
  return { input, nodes: [el("label", { for: "break-glass", text: "Break glass (optional): applies at once without approval, pages on-call, flagged in the audit trail" }), input] };
}

function tickLive() {
  const live = document.getElementById("live");
  if (!app.me || !app.lastOK) return;
  const age = Date.now() - app.lastOK;
  if (age > STALE_MS) {
    live.className = "live stale";
    live.textContent = "STALE: no answer from the daemon for " + ago(new Date(app.lastOK)) + "; figures may be out of date";
  } else {
    live.className = "live";
    live.textContent = "● live · updated " + Math.round(age / 1000) + "s ago";
  }
}

async function route() {
  app.view++;
  clearTimers();
  clearBanner();
  const main = document.getElementById("main");
  const [, page, ...rest] = location.hash.split("/");
  const arg = decodeURIComponent(rest.join("/"));
  if (!app.token && !app.me && page !== "login") {
    // Perhaps signed in through the identity provider or a proxy.
    try {
      const m = await (await fetch("/auth/methods")).json();
      if (m.signed_in) {
        app.me = await get("/v1/whoami");
        app.settings = await get("/v1/settings");
      }
    } catch (_) { /* not signed in that way */ }
  }
  if ((!app.token && !app.me) || page === "login") {
    app.me = null;
    renderShell();
    return renderLogin(main);
  }
  if (!app.me) {
    try {
      app.me = await get("/v1/whoami");
      app.settings = await get("/v1/settings");
    } catch (e) {
      if (!(e instanceof APIError && e.status === 401)) showError(e);
      return;
    }
  }
  renderShell();
  main.replaceChildren();
  switch (page || "") {
    case "": return renderBoard(main);
    case "breaker": return renderBreaker(main, arg);
    case "incidents": return renderIncidents(main);
    case "incident": return renderIncident(main, arg);
    case "audit": return renderAudit(main, arg);
    case "approvals": return renderApprovals(main);
    case "appeals": return renderAppeals(main);
    default: main.append(el("p", { text: "No such page. " }, el("a", { href: "#/", text: "Back to the breakers" })));
  }
}

// ---- sign-in ---------------------------------------------------------------

function renderLogin(main) {
  const input = el("input", { id: "token", type: "password", autocomplete: "off", placeholder: "bearer token" });
  const msg = el("p", { class: "err" });
  const form = el("form", { class: "card login", id: "login" },
    el("h1", { text: "Sign in" }),
    el("p", { class: "muted", text: "Use an admin API token. It stays in this browser tab only and is sent to this daemon alone." }),
    el("label", { for: "token", text: "Token" }), input, msg,
    el("button", { class: "primary", type: "submit", text: "Sign in" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    app.token = input.value.trim();
    try {
      app.me = await get("/v1/whoami");
      app.settings = await get("/v1/settings");
      sessionStorage.setItem(TOKEN_KEY, app.token);
      clearBanner();
      location.hash = "#/";
    } catch (e) {
      app.token = "";
      msg.textContent = e.status === 401 || !app.token ? "That token is not valid." : e.message;
      location.hash = "#/login";
    }
  });
  main.replaceChildren(form);
  input.focus();
  fetch("/auth/methods").then((r) => (r.ok ? r.json() : {})).then((m) => {
    if (!m.oidc) return;
    form.insertBefore(el("p", {},
      el("a", { id: "sso", class: "button primary", href: "/auth/login", text: "Sign in with your company account" })),
      form.children[1]);
    form.querySelector("p.muted").textContent = "Or use an admin API token. It stays in this browser tab only and is sent to this daemon alone.";
  }).catch(() => {});
}

// ---- board -----------------------------------------------------------------

function heldByScope(incidents) {
  const m = {};
  for (const i of incidents) m[i.scope] = (m[i.scope] || 0) + i.pending;
  return m;
}

// incidentByScope names, per scope, the incident its held count links to:
// the newest with actions pending (incidents come newest first).
function incidentByScope(incidents) {
  const m = {};
  for (const i of incidents) if (i.pending > 0 && !m[i.scope]) m[i.scope] = i.id;
  return m;
}

// showHolding puts how many breakers hold in the tab's title and favicon,
// so that a trip is seen from another tab.
function showHolding(breakers) {
  const n = breakers.filter((b) => b.holds).length;
  document.title = n ? `(${n} holding) Breakwater console` : "Breakwater console";
  const icon = document.querySelector('link[rel="icon"]');
  if (!icon) return;
  if (!n) { icon.setAttribute("href", "favicon.svg"); return; }
  const label = n > 9 ? "9+" : String(n);
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#dc2626"/>' +
    '<text x="16" y="23" font-family="sans-serif" font-size="20" font-weight="700" fill="#fff" text-anchor="middle">' + label + "</text></svg>";
  icon.setAttribute("href", "data:image/svg+xml," + encodeURIComponent(svg));
}

function effective(b) {
  // The thresholds in force: probation scales them.
  const t = b.thresholds;
  const scale = b.state === "probation" && t.probation_scale > 0 ? t.probation_scale : 1;
  return { max: t.max_actions * scale, factor: t.factor * scale, min: t.min_actions };
}

function ratio(b) {
  const c = b.counts;
  if (!c) return 0;
  const e = effective(b);
  let r = e.max > 0 ? c.window / e.max : 0;
  if (e.factor > 0 && c.baseline_ready && c.baseline > 0) r = Math.max(r, c.window / Math.max(e.factor * c.baseline, e.min));
  return r;
}

function sparkline(points, max) {
  const w = 140, h = 28;
  const svg = svgEl("svg", { class: "spark", viewBox: `0 0 ${w} ${h}`, "aria-label": "window count over the last hour" });
  if (!points || points.length < 2) return svg;
  const t0 = new Date(points[0].at).getTime(), t1 = Math.max(Date.now(), new Date(points[points.length - 1].at).getTime());
  const top = Math.max(max || 0, ...points.map((p) => p.window)) * 1.1 || 1;
  const x = (t) => ((new Date(t).getTime() - t0) / Math.max(1, t1 - t0)) * w;
  const y = (v) => h - (v / top) * (h - 2) - 1;
  svg.append(svgEl("polyline", { points: points.map((p) => x(p.at).toFixed(1) + "," + y(p.window).toFixed(1)).join(" ") }));
  if (max > 0) svg.append(svgEl("line", { x1: 0, x2: w, y1: y(max), y2: y(max) }));
  return svg;
}

function renderBoard(main) {
  const tbody = el("tbody");
  const filter = el("input", { type: "search", placeholder: "filter scopes", value: app.board.filter, "aria-label": "filter" });
  const only = el("select", { "aria-label": "show" },
    el("option", { value: "all", text: "all breakers" }),
    el("option", { value: "notclosed", text: "not closed" }),
    el("option", { value: "holding", text: "holding actions" }));
  only.value = app.board.only;
  const sort = el("select", { "aria-label": "sort" },
    el("option", { value: "state", text: "sort: state" }),
    el("option", { value: "ratio", text: "sort: nearest to tripping" }),
    el("option", { value: "held", text: "sort: held backlog" }),
    el("option", { value: "scope", text: "sort: scope" }));
  sort.value = app.board.sort;
  const summary = el("div", { class: "cards" });
  add(main, el("h1", { text: "Breakers" }), summary,
    el("div", { class: "tools" }, filter, only, sort),
    el("table", { id: "board" },
      el("thead", {}, el("tr", {},
        el("th", { text: "Scope" }), el("th", { text: "State" }), el("th", { text: "Window vs max_actions" }),
        el("th", { text: "vs factor × baseline" }), el("th", { text: "Last hour" }), el("th", { text: "In state" }),
        el("th", { class: "num", text: "Held pending" }), el("th", { text: "Manual state" }))),
      tbody));
  let data = { breakers: null, held: {}, history: {} };
  tbody.append(el("tr", {}, el("td", { colspan: 8, class: "muted", text: "Loading…" })));
  const draw = () => {
    if (!data.breakers) return; // the first answer has not come yet
    const q = app.board.filter.toLowerCase();
    let rows = data.breakers.filter((b) => b.scope.toLowerCase().includes(q));
    if (app.board.only === "notclosed") rows = rows.filter((b) => b.state !== "closed");
    if (app.board.only === "holding") rows = rows.filter((b) => b.holds);
    const by = {
      state: (a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || ratio(b) - ratio(a) || a.scope.localeCompare(b.scope),
      ratio: (a, b) => ratio(b) - ratio(a) || a.scope.localeCompare(b.scope),
      held: (a, b) => (data.held[b.scope] || 0) - (data.held[a.scope] || 0) || a.scope.localeCompare(b.scope),
      scope: (a, b) => a.scope.localeCompare(b.scope),
    }[app.board.sort];
    rows.sort(by);
    tbody.replaceChildren(...rows.map((b) => boardRow(b, data)));
    if (!rows.length) tbody.append(el("tr", {}, el("td", { colspan: 8, class: "muted", text: "No breaker matches." })));
    const notClosed = data.breakers.filter((b) => b.state !== "closed").length;
    const holding = data.breakers.filter((b) => b.holds).length;
    const pending = Object.values(data.held).reduce((a, b) => a + b, 0);
    summary.replaceChildren(
      el("div", { class: "card" }, el("b", { text: data.breakers.length }), "breakers"),
      el("div", { class: "card" }, el("b", { text: notClosed }), "not closed"),
      el("div", { class: "card" }, el("b", { text: holding, class: holding ? "err" : "" }), "holding actions"),
      el("div", { class: "card" }, el("b", { text: num(pending, 0) }), "held actions pending review"));
  };
  filter.addEventListener("input", () => { app.board.filter = filter.value; draw(); });
  only.addEventListener("change", () => { app.board.only = only.value; draw(); });
  sort.addEventListener("change", () => { app.board.sort = sort.value; draw(); });
  every(POLL_MS, async () => {
    const [bs, incs] = await Promise.all([get("/v1/breakers"), get("/v1/incidents")]);
    data.breakers = bs.breakers;
    data.held = heldByScope(incs.incidents);
    data.incident = incidentByScope(incs.incidents);
    showHolding(bs.breakers);
    draw();
  });
  every(HISTORY_MS, async () => {
    data.history = (await get("/v1/history?since=1h")).scopes || {};
    draw();
  });
}

function boardRow(b, data) {
  const c = b.counts, e = effective(b);
  const win = c ? c.window : 0;
  const maxCell = e.max > 0
    ? [el("span", { class: "bar" }, el("i", { class: win >= e.max ? "hot" : "", style: `width:${Math.min(100, (100 * win) / e.max)}%` })),
      `${num(win)} / ${num(e.max)} per ${dur(b.thresholds.window)}`]
    : [`${num(win)} per ${dur(b.thresholds.window)} / off`];
  let facCell = "–";
  if (e.factor > 0 && c && c.baseline_ready) {
    const lim = Math.max(e.factor * c.baseline, e.min);
    facCell = `${num(win)} / ${num(e.factor)}×${num(c.baseline)} = ${num(lim)}`;
  } else if (e.factor > 0) {
    facCell = "baseline not ready";
  } else facCell = "off";
  const manual = b.actor && b.state !== "open" && b.state !== "closed"
    ? el("span", { class: "small" }, el("b", { text: b.actor }), ": " + (b.reason || ""), b.until ? " · until " + when(b.until) : "")
    : "";
  const held = data.held[b.scope] || 0;
  return el("tr", { class: b.holds ? "holds" : "", "data-scope": b.scope, "data-state": b.state },
    el("td", {}, el("a", { href: "#/breaker/" + enc(b.scope), text: b.scope })),
    el("td", {}, stateBadge(b.state)),
    el("td", { class: "small" }, ...maxCell),
    el("td", { class: "small", text: facCell }),
    el("td", {}, sparkline(data.history[b.scope], e.max)),
    el("td", { class: "small", text: ago(b.since) }),
    el("td", { class: "num" }, held ? el("a", { href: data.incident && data.incident[b.scope] ? "#/incident/" + enc(data.incident[b.scope]) : "#/incidents", text: num(held, 0) }) : "0"),
    el("td", {}, manual));
}

// ---- breaker page ----------------------------------------------------------

function renderBreaker(main, scope) {
  const head = el("div", { class: "card" });
  const chart = el("div", { class: "card chart", id: "chart" }, el("p", { class: "muted", text: "Loading the chart…" }));
  const trans = el("tbody");
  const span = seconds(app.settings.history_span) || 3600;
  const ranges = [["15m", 900], ["30m", 1800], ["1h", 3600], ["6h", 21600], ["24h", 86400]].filter(([, sec]) => sec <= span);
  const range = el("select", { id: "range", "aria-label": "chart range" }, ...ranges.map(([v]) => el("option", { value: v, text: "last " + v })));
  // An hour unless the person picked another range: its 15 s points show
  // a new incident; the longer ranges have a point per 5 minutes.
  const fallback = ranges.some(([v]) => v === "1h") ? "1h" : ranges[ranges.length - 1][0];
  range.value = app.chartRange && ranges.some(([v]) => v === app.chartRange) ? app.chartRange : fallback;
  const chartTitle = el("h2", {});
  const drawChart = async () => {
    chartTitle.textContent = `Window count, thresholds, baseline and trips (last ${range.value}; hover for values)`;
    const svg = await call("GET", "/v1/breakers/" + enc(scope) + "/chart?since=" + range.value, undefined, true);
    // The server draws the chart and escapes every string in it.
    chart.innerHTML = svg;
  };
  range.addEventListener("change", () => { app.chartRange = range.value; drawChart().catch(showError); });
  add(main, el("p", {}, el("a", { href: "#/", text: "← Breakers" })), el("h1", { text: scope }), head,
    el("div", { class: "tools" }, chartTitle, range), chart,
    el("h2", { text: "Transitions" }),
    el("table", { id: "transitions" }, el("thead", {}, el("tr", {},
      el("th", { text: "At" }), el("th", { text: "Actor" }), el("th", { text: "Kind" }), el("th", { text: "From → to" }),
      el("th", { text: "Generation" }), el("th", { text: "Reason" }))), trans));
  let current = null;
  const drawHead = (b) => {
    current = b;
    const t = b.thresholds, c = b.counts || {};
    const controls = may("operator") ? el("div", { class: "controls", id: "controls" },
      el("button", { class: "danger", type: "button", text: "Force open", onclick: () => control(b, "forced_open") }),
      el("button", { type: "button", text: "Force close", onclick: () => control(b, "forced_closed") }),
      el("button", { type: "button", text: "Shadow", onclick: () => control(b, "shadow") }),
      el("button", { class: "primary", type: "button", text: "Reset", onclick: () => control(b, "reset") })) : null;
    put(head,
      el("div", { class: "tools" }, stateBadge(b.state), el("span", { text: (b.holds ? "holding its actions" : "forwarding") + " · in this state for " + ago(b.since) + " · generation " + b.generation })),
      el("dl", { class: "kv" },
        el("dt", { text: "window count" }), el("dd", { text: `${num(c.window)} in ${dur(t.window)}` + (c.event_time ? ` (event time ${when(c.event_time)})` : "") }),
        el("dt", { text: "max_actions" }), el("dd", { text: t.max_actions > 0 ? num(t.max_actions) : "off" }),
        el("dt", { text: "factor × baseline" }), el("dd", { text: t.factor > 0 ? `${num(t.factor)} × ${num(c.baseline)} per ${t.window}` + (c.baseline_ready ? "" : " (baseline not ready)") + `, at least ${num(t.min_actions)}` : "off" }),
        el("dt", { text: "probation" }), el("dd", { text: `${dur(t.probation)}, thresholds × ${num(t.probation_scale, 2)}` + (b.probation_until ? " · until " + when(b.probation_until) : "") }),
        el("dt", { text: "automatic state" }), el("dd", { text: b.auto }),
        b.actor ? [el("dt", { text: "set by" }), el("dd", { text: `${b.actor}: ${b.reason || ""}` + (b.until ? " · until " + when(b.until) : "") })] : null,
        b.tripped_at ? [el("dt", { text: "tripped at" }), el("dd", { text: when(b.tripped_at) })] : null),
      controls ? el("h2", { text: "Controls" }) : null, controls);
  };
  every(POLL_MS, async () => drawHead(await get("/v1/breakers/" + enc(scope))));
  every(HISTORY_MS, drawChart);
  every(5000, async () => {
    // One query per kind that changes the state: the scope's reviews
    // (thousands of entries in an incident) would push them out of one.
    const pages = await Promise.all(["transition", "reset", "override", "break_glass"].map((k) => get(`/v1/audit?limit=50&kind=${k}&scope=${enc(scope)}`)));
    const entries = pages.flatMap((p) => p.entries).sort((x, y) => (x.at < y.at ? 1 : x.at > y.at ? -1 : 0)).slice(0, 50);
    trans.replaceChildren(...entries.filter((e) => e.to).map((e) => el("tr", {},
      el("td", { class: "small", text: when(e.at) }), el("td", { text: e.actor }), el("td", { text: e.kind }),
      el("td", {}, e.from ? stateBadge(e.from.state) : "", " → ", stateBadge(e.to.state)),
      el("td", { class: "num", text: e.to.generation }), el("td", { text: e.reason || "" }))));
    if (!trans.children.length) trans.append(el("tr", {}, el("td", { colspan: 6, class: "muted", text: "No transitions in the audit trail." })));
  });
  return () => current;
}

const CONTROL = {
  forced_open: { verb: "Force open", what: "hold every action of", cls: "danger" },
  forced_closed: { verb: "Force close", what: "forward every action of", cls: "primary" },
  shadow: { verb: "Shadow", what: "evaluate but never hold the actions of", cls: "primary" },
  reset: { verb: "Reset", what: "move into probation", cls: "primary" },
};

// followReset watches a breaker for half a minute after its reset and says
// what happened next: still on probation, or tripped again, with the count
// and probation's limit it crossed.
function followReset(scope, r) {
  const view = app.view;
  const gen = r.breaker.generation;
  const t0 = Date.now();
  const tick = async () => {
    if (view !== app.view) return;
    try {
      const a = await get("/v1/audit?kind=transition&limit=20&scope=" + enc(scope));
      const trip = a.entries.find((e) => e.to && e.to.generation > gen && e.to.state === "open");
      if (trip) {
        const t = r.breaker.thresholds;
        const scale = t.probation_scale > 0 ? t.probation_scale : 1;
        const limit = trip.reason === "max_actions"
          ? `${num(t.max_actions * scale)}, probation's limit (max_actions ${num(t.max_actions)} × ${num(scale, 2)} per ${dur(t.window)})`
          : `probation's ${trip.reason} limit`;
        const after = Math.max(0, (new Date(trip.at) - new Date(r.breaker.since)) / 1000);
        showError(`${scope}: reset to ${r.breaker.state} (generation ${gen}); tripped again ${after < 60 ? "at once" : "after " + Math.round(after) + " s"}` +
          ` (generation ${trip.to.generation}): ${num(trip.window)} > ${limit}.`);
        document.getElementById("banner").dataset.retrip = trip.to.generation;
        return;
      }
      if (Date.now() - t0 > 30000) {
        showNote(`${scope}: reset to ${r.breaker.state} (generation ${gen}); it has not tripped again in 30 s.`);
        return;
      }
    } catch (e) { showError(e); return; }
    app.timers.push(setTimeout(tick, 1000));
  };
  app.timers.push(setTimeout(tick, 1000));
}

// runDialog shows form in the page's dialog and handles its submission:
// check returns what is missing (shown, nothing sent), the confirm button
// ok is disabled while submit runs, a failure is shown in msg with ok
// enabled again, and on success the dialog closes and the function submit
// returned (a note, a reload) runs.
function runDialog(form, { ok, msg, focus, check, submit }) {
  const d = document.getElementById("dialog");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const missing = check ? check() : "";
    if (missing) { msg.textContent = missing; return; }
    ok.disabled = true;
    let then;
    try {
      then = await submit();
    } catch (e) {
      msg.textContent = e.message;
      ok.disabled = false;
      return;
    }
    d.close();
    try { await (then && then()); } catch (e) { showError(e); }
  });
  d.replaceChildren(form);
  d.showModal();
  focus.focus();
}

// needReason is a runDialog check that the reason field is filled in.
function needReason(reason) {
  return () => reason.value.trim() ? "" : "A reason is required.";
}

function control(b, kind) {
  const c = CONTROL[kind];
  const d = document.getElementById("dialog");
  const reason = el("textarea", { id: "reason", rows: 3, maxlength: 1000, placeholder: "why (recorded in the audit trail)" });
  const expiry = kind === "reset" ? null : el("select", { id: "expiry" },
    el("option", { value: "", text: "until reset or another override" }),
    ...["15m", "1h", "2h", "6h", "24h", "168h"].map((v) => el("option", { value: v, text: "for " + v })));
  const msg = el("p", { class: "err" });
  const ok = el("button", { class: c.cls, type: "submit", id: "confirm", text: `${c.verb} ${b.scope}` });
  // Without probation a reset closes the breaker outright.
  const outright = kind === "reset" && (b.thresholds || {}).probation === "0s";
  // Loosening a breaker that holds needs a second operator.
  const gated = b.holds && (kind === "forced_closed" || kind === "shadow" || outright);
  const glass = gated ? breakGlassField() : null;
  const what = outright ? `close ${b.scope} outright (its scope has no probation)` : `${c.what} ${b.scope}`;
  const form = el("form", { method: "dialog" },
    el("h2", { text: `${c.verb} ${b.scope}?` }),
    el("p", { text: `This will ${what} on every replica at its next batch. It is now ${b.state.replace("_", " ")}.` }),
    gated ? el("p", { class: "muted", text: "It holds now, so this asks a second operator to approve the exact request before it applies." }) : null,
    el("label", { for: "reason", text: "Reason (required)" }), reason,
    expiry ? [el("label", { for: "expiry", text: "Expiry (optional)" }), expiry] : null,
    glass ? glass.nodes : null,
    msg,
    el("div", { class: "actions" }, el("button", { type: "button", text: "Cancel", onclick: () => d.close() }), ok));
  runDialog(form, { ok, msg, focus: reason, check: needReason(reason), submit: async () => {
    const path = "/v1/breakers/" + enc(b.scope) + (kind === "reset" ? "/reset" : "/override");
    const body = kind === "reset" ? { reason: reason.value } : { state: kind, reason: reason.value };
    if (expiry && expiry.value) body.for = expiry.value;
    if (glass && glass.input.value.trim()) body.break_glass = glass.input.value.trim();
    const r = await post(path, body);
    return () => {
      if (r.approvalRequested) return requested(r);
      showNote(`${b.scope}: ${r.from.state} → ${r.breaker.state} (generation ${r.breaker.generation}).`);
      if (kind === "reset") followReset(b.scope, r);
    };
  } });
}

// ---- incidents -------------------------------------------------------------

// progress shows how far an incident's review is: decided of held, and
// written to their topic (approved ones to gated, rejected ones to
// rejected) of decided.
function progress(i) {
  const decided = i.approved + i.rejected;
  return el("span", { class: "small" },
    el("span", { class: "bar", title: "decided" }, el("i", { style: `width:${i.held ? (100 * decided) / i.held : 0}%` })),
    `${num(decided, 0)}/${num(i.held, 0)} decided · `,
    el("span", { class: "bar", title: "written to their topic" }, el("i", { class: "released", style: `width:${decided ? (100 * i.written) / decided : 0}%` })),
    `${num(i.written, 0)} written`);
}

const LIFECYCLE = {
  active: "its breaker still holds: new actions join it",
  contained: "its breaker stopped holding under it; actions wait for review",
  reviewed: "every action decided; releases are being written",
  closed: "every decision written to its topic: nothing left to do",
};

function lifeBadge(i) {
  return el("span", { class: "life " + i.state, title: i.state_reason || LIFECYCLE[i.state] || "", text: i.state || "?" });
}

function renderIncidents(main) {
  const tbody = el("tbody");
  add(main, el("h1", { text: "Incidents" }),
    el("p", { class: "muted", text: "One incident per trip: the actions its breaker held, and how far their review is. " +
      "Active: its breaker still holds. Contained: it stopped holding, actions wait. Reviewed: all decided. Closed: all written." }),
    el("table", { id: "incidents" }, el("thead", {}, el("tr", {},
      el("th", { text: "Incident" }), el("th", { text: "State" }), el("th", { text: "First held" }), el("th", { class: "num", text: "Held" }),
      el("th", { class: "num", text: "Pending" }), el("th", { class: "num", text: "Approved", title: "approved, and of them released to enforcement" }),
      el("th", { class: "num", text: "Rejected", title: "rejected: never enforced" }), el("th", { text: "Progress" }),
      el("th", { text: "On call" }))), tbody));
  every(POLL_MS, async () => {
    const r = await get("/v1/incidents");
    tbody.replaceChildren(...r.incidents.map((i) => el("tr", { "data-incident": i.id, "data-state": i.state },
      el("td", {}, el("a", { href: "#/incident/" + enc(i.id), text: i.id }),
        i.continues ? el("div", { class: "small muted" }, "continues ", el("a", { href: "#/incident/" + enc(i.continues), text: i.continues })) : null),
      el("td", {}, lifeBadge(i)),
      el("td", { class: "small", text: when(i.first_held_at) }),
      el("td", { class: "num", text: num(i.held, 0) }), el("td", { class: "num", text: num(i.pending, 0) }),
      el("td", { class: "num" }, num(i.approved, 0), i.approved ? el("div", { class: "small muted", text: `${num(i.approved_released, 0)} released` }) : null),
      el("td", { class: "num", text: num(i.rejected, 0) }), el("td", {}, progress(i)),
      el("td", { class: "small" },
        i.ack_by ? "ack " + i.ack_by : el("b", { class: "err", text: "not acknowledged" }),
        i.owner ? " · owner " + i.owner : "",
        i.standing ? [" · ", el("b", { text: "standing " + i.standing.decision })] : ""))));
    if (!r.incidents.length) tbody.append(el("tr", {}, el("td", { colspan: 9, class: "muted", text: "No incidents: nothing is held." })));
  });
}

function countTable(title, m) {
  const rows = Object.entries(m || {}).sort((a, b) => b[1] - a[1]);
  return el("div", {}, el("h2", { text: title }), el("table", {}, el("tbody", {},
    ...rows.map(([k, v]) => el("tr", {}, el("td", { text: k || "(none)" }), el("td", { class: "num", text: num(v, 0) }))))));
}

function renderIncident(main, id) {
  const cards = el("div", { class: "cards", id: "progress" });
  const bars = el("div", { class: "card" });
  const oncall = el("div", { class: "card", id: "oncall" });
  const standing = el("div", { class: "card", id: "standing" });
  const release = el("div", { class: "card", id: "release", hidden: true });
  const bulk = el("div", { class: "controls" });
  const sampleBox = el("div", { id: "sample" });
  const reviewWhy = el("p", { class: "muted", id: "review-why", hidden: true });
  const breakdown = el("div", { class: "grid3", id: "breakdown" }, el("p", { class: "muted", text: "Counting…" }));
  const lookback = el("div", {}, el("p", { class: "muted", text: "Reading the gated topic…" }));
  const life = el("div", { class: "tools", id: "lifecycle" });
  const state = { inc: null };
  add(main, el("p", {}, el("a", { href: "#/incidents", text: "← Incidents" })), el("h1", { text: "Incident " + id }),
    life, cards, bars, oncall, standing, release,
    may("reviewer") ? [el("h2", { text: "Review" }), el("div", { class: "card" },
      el("div", { class: "controls", id: "review-controls" },
        el("button", { class: "primary", type: "button", id: "review-sample", text: "Review a sample", onclick: () => reviewSample(id, sampleBox, refresh) }),
        bulk),
      reviewWhy, sampleBox)] : null,
    el("h2", { text: "Breakdown of the held actions" }), breakdown,
    el("h2", { text: "Look-back: forwarded in the window before the trip" }), lookback,
    el("h2", { text: "Reverse what got through" }), drawReversal(id));
  if (may("reviewer")) {
    bulk.append(
      el("button", { type: "button", id: "approve-all", text: "Approve all pending", onclick: () => decideAll(state, "approve", release) }),
      el("button", { class: "danger", type: "button", id: "reject-all", text: "Reject all pending", onclick: () => decideAll(state, "reject", release) }));
  }
  const drawOncall = (inc) => {
    const me = app.me.name;
    put(oncall, el("h2", { text: "On call" }),
      el("dl", { class: "kv" },
        el("dt", { text: "acknowledged" }), el("dd", { id: "ack" }, inc.ack_by ? `by ${inc.ack_by} at ${when(inc.ack_at)}` : el("b", { class: "err", text: "not yet" }),
          !inc.ack_by && may("reviewer") ? [" ", el("button", { type: "button", id: "ack-button", class: "primary", text: "Acknowledge", onclick: () => changeIncident(inc, "ack", {}, "Acknowledged; on-call's page is acknowledged too.", refresh) })] : null),
        el("dt", { text: "owner" }), el("dd", { id: "owner" }, inc.owner || "nobody",
          may("reviewer") && inc.owner !== me ? [" ", el("button", { type: "button", id: "take", text: "Take it", onclick: () => changeIncident(inc, "owner", { owner: me }, "You own " + inc.id + ".", refresh) })] : null,
          may("reviewer") && inc.owner ? [" ", el("button", { type: "button", text: "Release", onclick: () => changeIncident(inc, "owner", { owner: "" }, inc.id + " has no owner now.", refresh) })] : null),
        el("dt", { text: "notes" }), el("dd", { id: "notes" },
          (inc.notes || []).length ? el("ul", { class: "notes" }, ...(inc.notes || []).map((n) => el("li", {}, el("span", { class: "small muted", text: `${when(n.at)} ${n.actor}: ` }), n.text))) : el("span", { class: "muted", text: "none" }))),
      may("reviewer") ? el("form", { class: "tools", id: "note-form", onsubmit: (ev) => {
        ev.preventDefault();
        const t = ev.target.querySelector("input");
        if (!t.value.trim()) return;
        t.blur(); // the card redraws with the note once the input is left
        changeIncident(inc, "notes", { text: t.value.trim() }, "Note added.", refresh).then(() => { t.value = ""; });
      } }, el("input", { id: "note-text", placeholder: "add a note (shared with on-call)", maxlength: 2000, size: 60 }), el("button", { type: "submit", text: "Add note" })) : null);
  };
  const drawStanding = (inc) => {
    const s = inc.standing;
    if (s) {
      put(standing, el("h2", { text: "Standing decision" }),
        el("p", { id: "standing-text" }, el("b", { class: s.decision === "reject" ? "err" : "", text: `${s.decision === "reject" ? "Reject" : "Approve"} everything ${inc.id} holds` }),
          `, now and until its breaker stops holding under it. Set by ${s.actor} at ${when(s.at)}: ${s.reason}. `,
          el("b", { id: "standing-applied", text: num(s.applied, 0) }), s.ended ? " actions decided by it; " : " actions decided by it so far; ",
          s.ended ? `it ended at ${when(s.ended)}: its breaker no longer holds and nothing is pending.`
            : inc.state === "active" ? "it keeps deciding what the breaker holds." : "its breaker no longer holds, so nothing new joins."),
        may("reviewer") && !s.ended ? el("button", { type: "button", id: "revoke", text: "Revoke", onclick: () => standingDialog(inc, "revoke", refresh) }) : null);
    } else if (inc.state === "active" || inc.state === "contained") {
      put(standing, el("h2", { text: "Standing decision" }),
        el("p", { class: "muted", text: "A standing decision approves or rejects every action this incident holds now and every action it holds until its breaker stops holding; revocable, audited." }),
        may("reviewer") ? el("div", { class: "controls" },
          el("button", { class: "danger", type: "button", id: "standing-reject", text: "Reject everything it holds, until the breaker stops", onclick: () => standingDialog(inc, "reject", refresh) }),
          el("button", { type: "button", id: "standing-approve", text: "Approve everything it holds, until the breaker stops", onclick: () => standingDialog(inc, "approve", refresh) })) : null);
    } else {
      put(standing, el("p", { class: "muted", text: "No standing decision; the incident is " + inc.state + "." }));
    }
  };
  // The breakdown is counted again while the incident grows: at most every
  // BREAKDOWN_MS, and only when its held count changed since the last count.
  let counted = -1, countedAt = 0;
  const drawBreakdown = async (held) => {
    countedAt = Date.now();
    try {
      const b = await get("/v1/incidents/" + enc(id) + "/breakdown");
      counted = held;
      breakdown.replaceChildren(countTable("Action type", b.action), countTable("Model version", b.model_version), countTable("Region", b.region));
      breakdown.dataset.counted = b.counted;
      if (b.truncated) breakdown.append(el("p", { class: "muted", text: `Counted the first ${num(b.counted, 0)} held actions of this incident.` }));
    } catch (e) { breakdown.replaceChildren(el("p", { class: "err", text: e.message })); }
  };
  const refresh = async () => {
    const inc = await get("/v1/incidents/" + enc(id));
    state.inc = inc;
    if (counted >= 0 && inc.held !== counted && Date.now() - countedAt >= BREAKDOWN_MS) drawBreakdown(inc.held);
    const decided = inc.approved + inc.rejected;
    document.dispatchEvent(new CustomEvent("incident", { detail: inc }));
    put(life, lifeBadge(inc), el("span", { id: "state-reason", text: inc.state_reason }),
      inc.continues ? el("span", {}, " · continues ", el("a", { href: "#/incident/" + enc(inc.continues), text: inc.continues }), " (tripped again soon after it)") : null,
      inc.continued_by ? el("span", {}, " · continued by ", el("a", { href: "#/incident/" + enc(inc.continued_by), text: inc.continued_by })) : null);
    // Approved actions are released to enforcement; rejected ones are only
    // recorded on the rejected topic: each card says which.
    cards.replaceChildren(...[
      ["held", inc.held, "held", ""],
      ["pending", inc.pending, "pending review", ""],
      ["approved", inc.approved, "approved", `${num(inc.approved_released, 0)} released to enforcement`],
      ["rejected", inc.rejected, "rejected", `never enforced; ${num(inc.rejected_written, 0)} recorded on the rejected topic`],
    ].map(([k, v, label, sub]) => el("div", { class: "card", "data-count": k }, el("b", { text: num(v, 0) }), label,
      sub ? el("div", { class: "small muted", id: "count-" + k + "-sub", text: sub }) : null)));
    put(bars, el("dl", { class: "kv" },
      el("dt", { text: "scope" }), el("dd", {}, el("a", { href: "#/breaker/" + enc(inc.scope), text: inc.scope })),
      el("dt", { text: "held" }), el("dd", { text: `${when(inc.first_held_at)} to ${when(inc.last_held_at)}` }),
      el("dt", { text: "progress" }), el("dd", {}, progress(inc)),
      el("dt", { text: "sampled precision" }), el("dd", { id: "sample-precision", text: inc.sample ? inc.sample.text : "no action judged one at a time yet" }),
      el("dt", { text: "audit" }), el("dd", {}, el("a", { href: "#/audit/" + enc(inc.id), id: "incident-audit", text: "every entry of this incident" }))));
    // Redrawn only when they change, so that a button is never replaced
    // under the pointer.
    const oncallKey = JSON.stringify([inc.ack_by, inc.owner, inc.notes]);
    const typing = oncall.contains(document.activeElement) && document.activeElement.matches("input, textarea");
    if (oncall.dataset.key !== oncallKey && !typing) { drawOncall(inc); oncall.dataset.key = oncallKey; }
    // Nothing to decide: the review buttons are disabled, and gone once
    // the incident is closed, with the reason in their place.
    const why = inc.state === "closed" ? "Closed: every action of this incident is decided and written to its topic; nothing is left to review."
      : inc.pending > 0 ? ""
      : inc.standing && !inc.standing.ended ? `Nothing is pending: the standing decision to ${inc.standing.decision} decides what the breaker holds.`
      : "Nothing is pending: every action held so far is decided.";
    for (const b of main.querySelectorAll("#review-controls button")) { b.disabled = why !== ""; b.hidden = inc.state === "closed"; }
    reviewWhy.textContent = why;
    reviewWhy.hidden = why === "";
    const standingKey = JSON.stringify([inc.standing, inc.state]);
    if (standing.dataset.key !== standingKey) { drawStanding(inc); standing.dataset.key = standingKey; }
    if (!release.hidden) {
      const pct = decided ? Math.floor((100 * inc.written) / decided) : 100;
      put(release, el("b", { text: `Release: ${pct}%` }), " ",
        el("span", { class: "bar wide" }, el("i", { class: "released", style: `width:${pct}%` })),
        el("p", { class: "small", text: pct >= 100 && inc.pending === 0 ? "Done: every decided action is written to its topic." : `${num(inc.written, 0)} of ${num(decided, 0)} decided actions written…` }));
      release.dataset.pct = pct;
    }
  };
  every(1000, refresh);
  (async () => {
    await drawBreakdown(state.inc ? state.inc.held : 0);
    try {
      const lb = await get("/v1/incidents/" + enc(id) + "/lookback");
      const all = lb.actions.slice().reverse();
      const drawLookback = (n) => {
        const rows = all.slice(0, n);
        put(lookback,
          el("p", { class: "muted", text: `${num(all.length, 0)}${lb.truncated ? "+" : ""} actions of the scope were forwarded from ${when(lb.from)} to ${when(lb.to)}` + (rows.length < all.length ? `; the newest ${rows.length} are shown.` : ".") }),
          rows.length ? el("table", { id: "lookback" }, el("thead", {}, el("tr", {}, el("th", { text: "Forwarded" }), el("th", { text: "Action id" }),
            el("th", { text: "Rule" }), el("th", { text: "Action" }), el("th", { text: "Target" }))),
          el("tbody", {}, ...rows.map((a) => el("tr", {}, el("td", { class: "small", text: when(a.forwarded_at) }), el("td", { text: a.action_id }),
            el("td", { text: a.rule_id }), el("td", { text: a.action }), el("td", { text: `${a.target_type}:${a.target_id}` }))))) : null,
          rows.length < all.length ? el("p", {}, el("button", { type: "button", text: `Show all ${num(all.length, 0)}`, onclick: () => drawLookback(all.length) })) : null);
      };
      drawLookback(15);
    } catch (e) { lookback.replaceChildren(el("p", { class: "err", text: e.message })); }
  })();
}

// changeIncident posts a change of an incident (ack, owner, notes) and
// shows the outcome.
async function changeIncident(inc, what, body, note, refresh) {
  try {
    await post("/v1/incidents/" + enc(inc.id) + "/" + what, body);
    showNote(note);
    await refresh();
  } catch (e) {
    showError(e);
  }
}

// standingDialog sets (approve, reject) or revokes a standing decision.
function standingDialog(inc, kind, refresh) {
  const d = document.getElementById("dialog");
  const reason = el("textarea", { id: "reason", rows: 3, maxlength: 1000, placeholder: "why (recorded in the audit trail)" });
  const msg = el("p", { class: "err" });
  const live = el("p", { id: "standing-live" });
  const words = kind === "revoke"
    ? { title: `Revoke the standing decision on ${inc.id}?`, button: "Revoke", cls: "primary" }
    : { title: `${kind === "reject" ? "Reject" : "Approve"} everything ${inc.id} holds, until its breaker stops holding?`, button: `Set: ${kind} everything ${inc.id} holds`, cls: kind === "reject" ? "danger" : "primary" };
  const ok = el("button", { class: words.cls, type: "submit", id: "confirm", text: words.button });
  const drawLive = (i) => {
    live.textContent = kind === "revoke"
      ? `It decided ${num(i.standing ? i.standing.applied : 0, 0)} actions; they stay decided. Actions held from now on wait for a reviewer.`
      : `It applies at once to the ${num(i.pending, 0)} actions pending now, then to every action ${i.id} holds while ${i.scope} holds under it ` +
        `(it is ${i.state}), ${kind === "reject" ? "sending them to the rejected topic: never enforced" : "releasing them to enforcement"}. ` +
        "Revocable; every decision it makes is in the audit trail.";
  };
  drawLive(inc);
  const onInc = (ev) => { if (ev.detail.id === inc.id) drawLive(ev.detail); };
  document.addEventListener("incident", onInc);
  d.addEventListener("close", () => document.removeEventListener("incident", onInc), { once: true });
  const form = el("form", { method: "dialog" }, el("h2", { text: words.title }), live,
    el("label", { for: "reason", text: "Reason (required)" }), reason, msg,
    el("div", { class: "actions" }, el("button", { type: "button", text: "Cancel", onclick: () => d.close() }), ok));
  runDialog(form, { ok, msg, focus: reason, check: needReason(reason), submit: async () => {
    const path = "/v1/incidents/" + enc(inc.id) + (kind === "revoke" ? "/standing/revoke" : "/standing");
    const body = kind === "revoke" ? { reason: reason.value } : { decision: kind, reason: reason.value };
    await post(path, body);
    return () => {
      showNote(kind === "revoke" ? `The standing decision on ${inc.id} is revoked.` : `Standing decision set: ${kind} everything ${inc.id} holds until its breaker stops holding.`);
      return refresh();
    };
  } });
}

function decideAll(state, verb, release) {
  const inc = state.inc;
  if (!inc) return;
  const d = document.getElementById("dialog");
  const typed = inc.pending > app.settings.confirm_above;
  const confirmInput = typed ? el("input", { id: "typed", autocomplete: "off", placeholder: inc.id }) : null;
  const reason = el("input", { id: "bulk-reason", placeholder: "optional reason" });
  const gated = verb === "approve" && app.settings.release_above !== undefined && inc.pending > app.settings.release_above;
  const glass = gated ? breakGlassField() : null;
  const msg = el("p", { class: "err" });
  const what = el("p", { id: "bulk-what" });
  const ok = el("button", { class: verb === "approve" ? "primary" : "danger", type: "submit", id: "confirm" });
  // The dialog shows live counts, and the decision covers what it showed:
  // the pending actions among the first `through` held.
  let seen = inc;
  const draw = (i) => {
    seen = i;
    ok.textContent = `${verb === "approve" ? "Approve" : "Reject"} ${num(i.pending, 0)} actions of ${i.id}`;
    ok.dataset.count = i.pending;
    what.textContent = (verb === "approve"
      ? `The ${num(i.pending, 0)} actions pending now will be released to enforcement (the gated topic), in their original per-key order.`
      : `The ${num(i.pending, 0)} actions pending now will never be enforced; they go to the rejected topic for the classifier team.`) +
      ` It covers the first ${num(i.held, 0)} actions ${i.id} held (the count updates live).` +
      (i.state === "active" ? " Its breaker still holds: actions it holds after you confirm stay pending. For those, set a standing decision." : "");
  };
  draw(inc);
  const onInc = (ev) => { if (ev.detail.id === inc.id) draw(ev.detail); };
  document.addEventListener("incident", onInc);
  d.addEventListener("close", () => document.removeEventListener("incident", onInc), { once: true });
  const form = el("form", { method: "dialog" },
    el("h2", { text: `${verb === "approve" ? "Approve" : "Reject"} every pending action of ${inc.id}?` }), what,
    typed ? [el("label", { for: "typed", text: `More than ${app.settings.confirm_above} actions: type the incident id ${inc.id} to confirm` }), confirmInput] : null,
    el("label", { for: "bulk-reason", text: "Reason" }), reason,
    gated ? [el("p", { class: "muted", text: `More than ${app.settings.release_above} actions: this asks a second reviewer to approve the exact list before it is released.` }), glass.nodes] : null,
    msg,
    el("div", { class: "actions" }, el("button", { type: "button", text: "Cancel", onclick: () => d.close() }), ok));
  const check = () => typed && confirmInput.value.trim() !== inc.id ? `Type ${inc.id} exactly to confirm.` : "";
  runDialog(form, { ok, msg, focus: confirmInput || reason, check, submit: async () => {
    const body = { through: seen.held };
    if (reason.value.trim()) body.reason = reason.value.trim();
    if (glass && glass.input.value.trim()) body.break_glass = glass.input.value.trim();
    const shown = seen.pending;
    const r = await post("/v1/incidents/" + enc(inc.id) + "/" + verb, body);
    return () => {
      if (r.approvalRequested) return requested(r);
      const done = verb === "approve" ? "approved" : "rejected";
      showNote(`${num(r.changed, 0)} actions ${done}` + (r.changed !== shown ? ` (the dialog showed ${num(shown, 0)}; ${num(shown - r.changed, 0)} were decided by someone else meanwhile)` : "") + "; releasing…");
      release.hidden = false;
    };
  } });
}

async function reviewSample(id, box, refresh) {
  const r = await get("/v1/incidents/" + enc(id) + "/pick?n=20");
  const items = r.items;
  const decisions = {};
  let at = 0;
  const view = app.view;
  const card = el("div", { class: "item card", id: "sample-item", tabindex: "-1" });
  const side = el("div", { class: "card small" },
    el("p", {}, el("kbd", { text: "a" }), " approve · ", el("kbd", { text: "r" }), " reject"),
    el("p", {}, el("kbd", { text: "j" }), " / ", el("kbd", { text: "→" }), " next · ", el("kbd", { text: "k" }), " / ", el("kbd", { text: "←" }), " previous"),
    el("p", {}, el("kbd", { text: "u" }), " undo the last decision (until it is released)"),
    el("p", {}, el("kbd", { text: "Esc" }), " close"));
  const status = el("p", { class: "muted", id: "sample-status" });
  const related = {}; // action id -> the other held actions on its target
  const strip = () => el("div", { class: "strip", id: "sample-strip", "aria-label": "progress through the sample" },
    ...items.map((it, i) => el("i", {
      class: (decisions[it.action_id] || "pending") + (i === at ? " at" : ""),
      title: `${i + 1}: ${decisions[it.action_id] || "not decided"}`,
    })));
  const draw = () => {
    if (!items.length) { card.replaceChildren(el("p", { text: "Nothing is pending in this incident." })); return; }
    const h = items[at];
    const dec = decisions[h.action_id] || h.status;
    card.dataset.actionId = h.action_id;
    card.dataset.status = dec;
    const target = `${h.target_type}:${h.target_id}`;
    const conf = h.confidence === undefined || h.confidence === null ? "–"
      : el("span", { id: "sample-confidence" }, el("span", { class: "bar" }, el("i", { style: `width:${Math.max(0, Math.min(100, 100 * h.confidence))}%` })), num(h.confidence, 3));
    const rel = related[h.action_id];
    put(card,
      el("div", { class: "tools" }, el("b", { text: `${at + 1} of ${items.length}` }),
        el("span", { class: "decision-" + dec, text: dec }), strip()),
      el("dl", { class: "kv" },
        el("dt", { text: "action" }), el("dd", {}, el("b", { text: h.action }), " · ", h.action_id),
        el("dt", { text: "target" }), el("dd", {}, h.target_url
          ? el("a", { id: "sample-target", href: h.target_url, target: "_blank", rel: "noopener noreferrer", text: target + " ↗" })
          : el("span", { id: "sample-target", text: target })),
        el("dt", { text: "rule" }), el("dd", {}, el("b", { text: h.rule_id }), h.rule_description ? el("div", { class: "small", id: "sample-rule", text: h.rule_description }) : el("div", { class: "small muted", text: "no description in the configuration" })),
        el("dt", { text: "model" }), el("dd", { id: "sample-model", text: [h.model_name, h.model_version].filter(Boolean).join(" ") || "–" }),
        el("dt", { text: "confidence" }), el("dd", {}, conf),
        el("dt", { text: "region" }), el("dd", { text: h.region || "–" }),
        el("dt", { text: "occurred · held" }), el("dd", { class: "small", text: `${when(h.occurred_at)} · ${when(h.held_at)}` }),
        el("dt", { text: "source" }), el("dd", { class: "small", text: h.source || "–" }),
        h.hold_reason ? el("dt", { text: "held because" }) : null,
        h.hold_reason ? el("dd", { class: "small", id: "sample-hold-reason", text: h.hold_reason }) : null),
      el("h3", { text: `Other held actions on ${target}` }),
      el("div", { id: "sample-related" }, rel === undefined ? el("p", { class: "muted small", text: "Looking…" })
        : rel.length === 0 ? el("p", { class: "muted small", text: "None: this is the only held action on this target." })
        : el("table", { class: "small" }, el("tbody", {}, ...rel.map((o) => el("tr", { "data-action-id": o.action_id },
          el("td", { text: when(o.held_at) }), el("td", { text: o.action }), el("td", { text: o.rule_id }),
          el("td", {}, el("a", { href: "#/incident/" + enc(o.incident), text: o.incident })), el("td", { class: "decision-" + o.status, text: o.status })))))));
    if (rel === undefined) {
      get("/v1/held/" + enc(h.action_id) + "/related").then((x) => { related[h.action_id] = x.items; if (items[at] === h) draw(); })
        .catch((e) => { related[h.action_id] = []; showError(e); });
    }
    const done = Object.keys(decisions).length;
    status.textContent = `${done} of ${items.length} sampled actions decided (of ${r.pending} pending when drawn).`;
  };
  let busy = false; // one decision at a time: a key held or pressed twice decides once
  const decide = async (verb) => {
    const h = items[at];
    if (!h || busy) return;
    busy = true;
    try {
      const o = await post("/v1/held/" + verb, { ids: [h.action_id], reason: "sample review" });
      decisions[h.action_id] = o.conflicts && o.conflicts.length ? (verb === "approve" ? "rejected" : "approved") : (verb === "approve" ? "approved" : "rejected");
      if (!(o.conflicts && o.conflicts.length)) undone.push(h.action_id);
      if (at < items.length - 1) at++;
      draw();
      if (refresh) refresh().catch(showError); // the counters agree with the sample at once
    } catch (e) {
      showError(e);
    } finally {
      busy = false;
    }
  };
  const undone = []; // the order decisions were made in, for u
  const undo = async () => {
    const id = undone.pop();
    if (!id || busy) return;
    busy = true;
    try {
      const o = await post("/v1/held/undo", { ids: [id], reason: "sample review: undo" });
      if (o.undone.includes(id)) {
        delete decisions[id];
        at = items.findIndex((it) => it.action_id === id);
        showNote(`${id} is pending again.`);
      } else {
        showError(`${id} is already written to its topic; its decision stands.`);
      }
      draw();
      if (refresh) refresh().catch(showError);
    } catch (e) {
      showError(e);
    } finally {
      busy = false;
    }
  };
  const onKey = (ev) => {
    if (view !== app.view) { document.removeEventListener("keydown", onKey); return; }
    if (ev.repeat || document.getElementById("dialog").open || ev.target.matches("input, textarea, select")) return;
    switch (ev.key) {
      case "a": decide("approve"); break;
      case "r": decide("reject"); break;
      case "u": undo(); break;
      case "j": case "ArrowRight": at = Math.min(items.length - 1, at + 1); draw(); break;
      case "k": case "ArrowLeft": at = Math.max(0, at - 1); draw(); break;
      case "Escape": document.removeEventListener("keydown", onKey); box.replaceChildren(); return;
      default: return;
    }
    ev.preventDefault();
  };
  document.addEventListener("keydown", onKey);
  box.replaceChildren(el("div", { class: "review" }, card, side), status);
  draw();
  card.focus();
}

// ---- approvals -------------------------------------------------------------

function renderApprovals(main) {
  const only = el("select", { id: "f-status", "aria-label": "status" },
    ...[["pending", "pending"], ["", "every status"], ["applied", "applied"], ["refused", "refused"], ["expired", "expired"], ["break_glass", "break-glass"]]
      .map(([v, t]) => el("option", { value: v, text: t })));
  const tbody = el("tbody");
  add(main, el("h1", { text: "Approvals" }),
    el("p", { class: "muted", text: "What can do harm waits here for a second person: forcing a breaker that holds closed or into shadow, reversing what got through, turning the appeals trip off (an operator approves), releasing many held actions at once (a second reviewer approves). An approval names the exact request; an edit voids it." }),
    el("div", { class: "tools" }, only),
    el("table", { id: "approvals" }, el("thead", {}, el("tr", {},
      el("th", { text: "Requested" }), el("th", { text: "By" }), el("th", { text: "What" }), el("th", { text: "Needs" }),
      el("th", { text: "Status" }), el("th", { text: "Expires" }), el("th", { text: "" }))), tbody));
  const load = async () => {
    const q = new URLSearchParams({ limit: "200" });
    if (only.value) q.set("status", only.value);
    const r = await get("/v1/approvals?" + q);
    tbody.replaceChildren(...r.approvals.map((a) => {
      const mine = a.requester === app.me.name;
      const open = a.status === "pending";
      return el("tr", { "data-approval": a.id, "data-status": a.status },
        el("td", { class: "small", text: when(a.requested_at) }), el("td", { text: a.requester }),
        el("td", { text: a.summary }), el("td", { text: a.role }),
        el("td", {}, el("span", { class: "decision-" + a.status, text: a.status.replace("_", "-") }),
          a.decided_by ? ` by ${a.decided_by}` : "", a.reason ? `: ${a.reason}` : "", a.error ? [" ", el("span", { class: "err", text: a.error })] : ""),
        el("td", { class: "small", text: open ? when(a.expires_at) : "" }),
        el("td", {}, open && !mine && may(a.role) ? el("button", { class: "primary", type: "button", text: "Review", "data-act": "review", onclick: () => reviewApproval(a.id, load) }) : "",
          open && (mine || may(a.role)) ? el("button", { type: "button", text: mine ? "Withdraw" : "Refuse", "data-act": "refuse", onclick: () => refuseApproval(a, load) }) : ""));
    }));
    if (!r.approvals.length) tbody.append(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "No requests match." })));
  };
  only.addEventListener("change", () => load().catch(showError));
  every(POLL_MS, load);
  const revs = el("tbody");
  add(main, el("h2", { text: "Reversals" }),
    el("table", { id: "reversals" }, el("thead", {}, el("tr", {},
      el("th", { text: "Started" }), el("th", { text: "Incident" }), el("th", { text: "Written" }), el("th", { text: "Status" }),
      el("th", { text: "Requested by" }), el("th", { text: "Approved by" }), el("th", { text: "Reason" }))), revs));
  every(POLL_MS, async () => {
    const r = await get("/v1/reversals");
    revs.replaceChildren(...r.reversals.map((j) => el("tr", { "data-reversal": j.id, "data-status": j.status },
      el("td", { class: "small", text: when(j.started_at) }), el("td", {}, el("a", { href: "#/incident/" + enc(j.incident), text: j.incident })),
      el("td", {}, el("span", { class: "bar" }, el("i", { class: "released", style: `width:${j.total ? (100 * j.written) / j.total : 100}%` })), ` ${num(j.written, 0)} of ${num(j.total, 0)}`),
      el("td", { text: j.status }), el("td", { text: j.requested_by }),
      el("td", {}, j.break_glass ? el("b", { class: "err", text: "BREAK-GLASS" }) : (j.approved_by || "")), el("td", { text: j.reason }))));
    if (!r.reversals.length) revs.append(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "No reversals." })));
  });
}

// ---- appeals ---------------------------------------------------------------

// renderAppeals shows the appeals signal: the overturn_rate trip's switch
// (an operator turns it off, which a second operator approves, or on) and
// the estimates per rule and model version.
function renderAppeals(main) {
  const sw = el("div", { class: "card", id: "appeals-trip" }, el("p", { class: "muted", text: "Reading…" }));
  const policy = el("p", { class: "muted" });
  const tbody = el("tbody");
  add(main, el("h1", { text: "Appeals" }),
    el("p", { class: "muted", text: "The appeals system's outcomes of forwarded actions, judged per rule and per model version over the latest outcomes. A fall one model version carries trips that version's breaker alone (overturn_rate); one the rule's other versions share trips the rule. Outcomes of actions forwarded before a trip are the trip's: they are left out." }),
    sw, policy,
    el("table", { id: "appeals-estimates" }, el("thead", {}, el("tr", {},
      el("th", { text: "Rule" }), el("th", { text: "Model version" }), el("th", { text: "Outcomes" }), el("th", { text: "Overturned" }),
      el("th", { text: "P(precision < floor)" }), el("th", { text: "Trips" }), el("th", { text: "Left out" }))), tbody));
  let shown = "";
  const load = async () => {
    let r;
    try {
      r = await get("/v1/appeals");
    } catch (e) {
      if (e instanceof APIError && e.status === 404) {
        put(sw, el("p", { text: "The appeals signal is off (appeals.enabled)." }));
        return;
      }
      throw e;
    }
    put(policy, `Trips when P(precision < ${r.precision_floor}) ≥ ${r.confidence} with at least ${r.min_outcomes} of the latest ${r.window} outcomes.`);
    const t = r.trip;
    const key = JSON.stringify(t);
    if (key !== shown) {
      shown = key;
      put(sw, el("p", { id: "appeals-switch", "data-enabled": String(t.enabled) },
        t.enabled ? el("b", { text: "The appeals trip is on." }) : el("b", { class: "err", text: "The appeals trip is OFF: no breaker trips on appeals." }),
        t.by ? ` Last set by ${t.by}${t.approver ? ", approved by " + t.approver : (t.enabled ? "" : " (break-glass)")} at ${when(t.at)}: ${t.reason}.` : "",
        !t.enabled && t.until && !t.until.startsWith("0001") ? ` It turns on again at ${when(t.until)}.` : ""),
        may("operator") ? el("div", { class: "actions" },
          el("button", { type: "button", id: "appeals-toggle", class: t.enabled ? "danger" : "primary", text: t.enabled ? "Turn the trip off…" : "Turn the trip on…",
            onclick: () => appealsTrip(!t.enabled, load) })) : null);
    }
    tbody.replaceChildren(...r.estimates.map((e) => el("tr", { "data-scope": e.scope, "data-trips": String(e.trips) },
      el("td", {}, el("a", { href: "#/breaker/" + enc(e.scope), text: e.rule_id })), el("td", { text: e.model_version || "all" }),
      el("td", { text: num(e.outcomes, 0) }),
      el("td", { text: `${num(e.overturned, 0)}${e.outcomes ? " (" + Math.round((100 * e.overturned) / e.outcomes) + "%)" : ""}` }),
      el("td", { text: e.p_below_floor.toFixed(3) }), el("td", {}, e.trips ? el("b", { class: "err", text: "yes" }) : "no"),
      el("td", { text: num(e.left_out, 0) }))));
    if (!r.estimates.length) tbody.append(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "No outcomes yet." })));
  };
  every(POLL_MS, load);
}

// appealsTrip asks to turn the appeals trip on (at once) or off (a second
// operator approves, unless the glass is broken).
function appealsTrip(on, reload) {
  const d = document.getElementById("dialog");
  const reason = el("textarea", { id: "reason", rows: 3, maxlength: 1000, placeholder: "why (recorded in the audit trail)" });
  const expiry = on ? null : el("select", { id: "expiry" },
    el("option", { value: "", text: "until turned on" }),
    ...["1h", "6h", "24h", "168h"].map((v) => el("option", { value: v, text: "for " + v })));
  const glass = on ? null : breakGlassField();
  const msg = el("p", { class: "err" });
  const ok = el("button", { class: on ? "primary" : "danger", type: "submit", id: "confirm", text: on ? "Turn on" : "Ask to turn off" });
  const form = el("form", { method: "dialog" },
    el("h2", { text: on ? "Turn the appeals trip on?" : "Turn the appeals trip off?" }),
    el("p", { text: on ? "Breakers trip on appeals again from the next outcome." :
      "While it is off, outcomes are judged but no breaker trips on them: a misfiring rule goes on enforcing. A second operator approves the exact request." }),
    el("label", { for: "reason", text: "Reason (required)" }), reason,
    expiry ? [el("label", { for: "expiry", text: "How long" }), expiry] : null,
    glass ? glass.nodes : null, msg,
    el("div", { class: "actions" }, el("button", { type: "button", text: "Cancel", onclick: () => d.close() }), ok));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!reason.value.trim()) { msg.textContent = "A reason is required."; return; }
    ok.disabled = true;
    try {
      const body = { enabled: on, reason: reason.value.trim() };
      if (expiry && expiry.value) body.for = expiry.value;
      if (glass && glass.input.value.trim()) body.break_glass = glass.input.value.trim();
      const r = await post("/v1/appeals/trip", body);
      d.close();
      if (r.approvalRequested) return requested(r);
      showNote(r.enabled ? "The appeals trip is on." : "The appeals trip is off (break-glass: on-call was paged).");
      await reload();
    } catch (e) {
      msg.textContent = e.message;
      ok.disabled = false;
    }
  });
  d.replaceChildren(form);
  d.showModal();
  reason.focus();
}

// drawReversal returns the reversal card of incident id: what a reversal
// would undo (the scope's actions forwarded from the estimated onset to
// the trip) and, for an operator, the request.
function drawReversal(id) {
  const box = el("div", { class: "card", id: "reversal" }, el("p", { class: "muted", text: "Reading the gated topic…" }));
  (async () => {
    try {
      const pv = await get("/v1/incidents/" + enc(id) + "/reversal");
      const kinds = Object.keys(pv.action).sort();
      put(box,
        el("p", { id: "reversal-count", "data-candidates": pv.candidates,
          text: `${num(pv.candidates, 0)} actions of ${pv.scope} ${pv.onset === 'detector' ? 'stamped from the estimated onset at ' + when(pv.from) + ' were forwarded before' : 'were forwarded from ' + when(pv.from) + ' (the look-back window) to'} the trip at ${when(pv.to)}` +
            (pv.already_reversed ? `; ${num(pv.already_reversed, 0)} more are reversed already.` : ".") }),
        el("div", { class: "grid3" }, countTable("Action type", pv.action), countTable("Model version", pv.model_version), countTable("Region", pv.region)),
        may("operator") && pv.candidates > 0 ? el("div", { class: "controls" },
          el("button", { class: "danger", type: "button", id: "request-reversal", text: "Request a reversal…", onclick: () => requestReversal(pv, kinds) })) : null);
    } catch (e) { box.replaceChildren(el("p", { class: "err", text: e.message })); }
  })();
  return box;
}

function requestReversal(pv, kinds) {
  const d = document.getElementById("dialog");
  const reason = el("textarea", { id: "reversal-reason", rows: 2, maxlength: 1000, placeholder: "why (on every compensating record and in the audit trail)" });
  const boxes = kinds.map((k) => el("label", {}, el("input", { type: "checkbox", value: k, checked: true, "data-action": k }), ` ${k} (${num(pv.action[k], 0)})`));
  const glass = breakGlassField();
  const msg = el("p", { class: "err" });
  const ok = el("button", { class: "danger", type: "submit", id: "confirm", text: "Request the reversal" });
  const form = el("form", { method: "dialog" },
    el("h2", { text: `Reverse what ${pv.incident} let through?` }),
    el("p", { text: `One compensating record per action goes to the reversals topic for the enforcement service, each action once. A second operator approves the exact list first.` }),
    el("p", {}, "Action types:", ...boxes),
    el("label", { for: "reversal-reason", text: "Reason (required)" }), reason, glass.nodes, msg,
    el("div", { class: "actions" }, el("button", { type: "button", text: "Cancel", onclick: () => d.close() }), ok));
  const actions = () => boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
  const check = () => needReason(reason)() || (actions().length ? "" : "Choose at least one action type.");
  runDialog(form, { ok, msg, focus: reason, check, submit: async () => {
    const body = { reason: reason.value.trim(), actions: actions() };
    if (glass.input.value.trim()) body.break_glass = glass.input.value.trim();
    const r = await post("/v1/incidents/" + enc(pv.incident) + "/reversal", body);
    return () => r.approvalRequested ? requested(r) : showNote(`Reversal ${r.id} started: ${r.total} actions.`);
  } });
}

// reviewApproval shows a request with its exact payload; approving names
// the hash of what is shown.
async function reviewApproval(id, reload) {
  const a = await get("/v1/approvals/" + enc(id));
  const d = document.getElementById("dialog");
  const msg = el("p", { class: "err" });
  const ok = el("button", { class: "primary", type: "submit", id: "confirm", text: "Approve and apply" });
  const form = el("form", { method: "dialog" },
    el("h2", { text: `Approve ${a.requester}'s request?` }),
    el("p", { text: a.summary }),
    el("dl", { class: "kv" },
      ...[["operation", a.operation], ["target", a.target || "–"], ["requested", when(a.requested_at)], ["expires", when(a.expires_at)],
        ["payload sha256", a.payload_sha256]].flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])),
    el("pre", { class: "small", id: "approval-payload", text: JSON.stringify(a.payload, null, 2).slice(0, 4000) }),
    msg,
    el("div", { class: "actions" }, el("button", { type: "button", text: "Cancel", onclick: () => d.close() }), ok));
  runDialog(form, { ok, msg, focus: ok, submit: async () => {
    const r = await post("/v1/approvals/" + enc(a.id) + "/approve", { payload_sha256: a.payload_sha256 });
    return () => { showNote(`Approved and applied: ${r.summary}.`); return reload(); };
  } });
}

function refuseApproval(a, reload) {
  const d = document.getElementById("dialog");
  const reason = el("textarea", { id: "refuse-reason", rows: 2, maxlength: 1000, placeholder: "why (recorded in the audit trail)" });
  const msg = el("p", { class: "err" });
  const ok = el("button", { class: "danger", type: "submit", id: "confirm", text: "Refuse" });
  const form = el("form", { method: "dialog" },
    el("h2", { text: `Refuse: ${a.summary}?` }),
    el("label", { for: "refuse-reason", text: "Reason (required)" }), reason, msg,
    el("div", { class: "actions" }, el("button", { type: "button", text: "Cancel", onclick: () => d.close() }), ok));
  runDialog(form, { ok, msg, focus: reason, check: needReason(reason), submit: async () => {
    await post("/v1/approvals/" + enc(a.id) + "/refuse", { reason: reason.value.trim() });
    return () => { showNote(`Refused: ${a.summary}.`); return reload(); };
  } });
}

// ---- audit -----------------------------------------------------------------

// auditWhat says what an entry changed or covered, in words.
function auditWhat(e) {
  if (e.to) return [e.from ? stateBadge(e.from.state) : "", " → ", stateBadge(e.to.state), e.window ? ` at a window count of ${num(e.window)}` : ""];
  switch (e.kind) {
    case "standing": {
      // Its decisions are folded into this entry: how many so far, and when the last was.
      const p = e.progress;
      return [`standing decision: ${e.decision} everything it holds (${num(e.count, 0)} pending when set)`,
        el("div", { class: "standing-progress", "data-count": p ? p.count : 0 }, p
          ? [`${e.decision === "reject" ? "rejected" : "approved"} ${num(p.count, 0)} actions so far in ${num(p.steps, 0)} steps; the last at `,
            el("span", { class: "nowrap", text: when(p.last) })]
          : "no action decided by it yet")];
    }
    case "standing_revoked": return `standing decision to ${e.decision} revoked after ${num(e.count, 0)} actions`;
    case "standing_ended": return `standing decision to ${e.decision} ended after ${num(e.count, 0)} actions: nothing left for it to decide`;
    case "acknowledge": return "acknowledged";
    case "owner": return e.owner ? "owner: " + e.owner : "owner released";
    case "note": return "note";
    case "release": {
      // An incident's release batches are folded into this entry; the bar
      // is the incident's progress.
      const p = e.progress;
      const n = p ? p.count : e.count;
      const batches = p && p.steps > 1 ? [` in ${num(p.steps, 0)} batches, the last at `, el("span", { class: "nowrap", text: when(p.last) })] : "";
      const inc = e.incident_now;
      if (!inc) return [`${num(n, 0)} actions written to their topic (approved to gated, rejected to rejected)`, batches];
      const decided = inc.approved + inc.rejected;
      const pct = decided ? Math.floor((100 * inc.written) / decided) : 100;
      return el("span", { class: "release-progress", "data-pct": pct }, `${num(n, 0)} actions written to their topic`, batches, "; ",
        el("span", { class: "bar" }, el("i", { class: "released", style: `width:${pct}%` })),
        `${num(inc.written, 0)} of ${num(decided, 0)} decided written (${pct}%): ${num(inc.approved_released, 0)} approved released, ${num(inc.rejected_written, 0)} rejected recorded`);
    }
  }
  if (e.action_id) return `${e.action_id} ${e.kind === "approve" ? "approved" : e.kind === "reject" ? "rejected" : ""}`;
  if (e.count) return `${num(e.count, 0)} actions ${e.kind === "approve" ? "approved" : e.kind === "reject" ? "rejected" : ""}` + (e.via === "standing" ? " by the standing decision" : "");
  return "";
}

function renderAudit(main, incident) {
  const f = {
    scope: el("input", { id: "f-scope", placeholder: "scope", "aria-label": "scope" }),
    incident: el("input", { id: "f-incident", placeholder: "incident", "aria-label": "incident", value: incident || "" }),
    actor: el("input", { id: "f-actor", placeholder: "actor", "aria-label": "actor" }),
    kind: el("select", { id: "f-kind", "aria-label": "kind" }, el("option", { value: "", text: "every kind" }),
      ...["transition", "override", "reset", "approve", "reject", "release", "acknowledge", "owner", "note", "standing", "standing_revoked", "standing_ended",
        "approval_request", "approval_edit", "approval_approve", "approval_refuse", "break_glass"].map((k) => el("option", { value: k, text: k }))),
    since: el("select", { id: "f-since", "aria-label": "since" }, ...[["1h", "last hour"], ["24h", "last day"], ["168h", "last week"], ["", "all kept"]]
      .map(([v, t]) => el("option", { value: v, text: t }))),
    until: el("input", { id: "f-until", type: "datetime-local", "aria-label": "until" }),
  };
  f.since.value = "24h";
  const tbody = el("tbody");
  add(main, el("h1", { text: incident ? "Audit trail of " + incident : "Audit trail" }),
    incident ? el("p", {}, el("a", { href: "#/incident/" + enc(incident), text: "← Incident " + incident })) : null,
    el("div", { class: "tools" }, f.scope, f.incident, f.actor, f.kind, f.since, el("span", { class: "small muted", text: "until" }), f.until),
    el("table", { id: "audit" }, el("thead", {}, el("tr", {},
      el("th", { text: "At" }), el("th", { text: "Actor" }), el("th", { text: "Kind" }), el("th", { text: "Scope / incident" }),
      el("th", { text: "Change" }), el("th", { text: "Reason" }))), tbody));
  const load = async () => {
    const q = new URLSearchParams({ limit: "200" });
    if (f.scope.value.trim()) q.set("scope", f.scope.value.trim());
    if (f.incident.value.trim()) q.set("incident", f.incident.value.trim());
    if (f.actor.value.trim()) q.set("actor", f.actor.value.trim());
    if (f.kind.value) q.set("kind", f.kind.value);
    if (f.since.value) q.set("since", f.since.value);
    if (f.until.value) q.set("until", new Date(f.until.value).toISOString());
    const [r, incs] = await Promise.all([get("/v1/audit?" + q), get("/v1/incidents")]);
    // The trail shows an incident's release as one entry (its batches
    // folded into it); its bar is the incident's progress now.
    const byID = Object.fromEntries(incs.incidents.map((i) => [i.id, i]));
    const rows = r.entries.map((e) => e.kind === "release" && byID[e.incident] ? { ...e, incident_now: byID[e.incident] } : e);
    tbody.replaceChildren(...rows.map((e) => el("tr", { "data-kind": e.kind, "data-incident": e.incident || "" },
      el("td", { class: "small", text: when(e.at) }), el("td", { text: e.actor }), el("td", { text: e.kind }),
      el("td", {}, e.scope ? el("a", { href: "#/breaker/" + enc(e.scope), text: e.scope }) : "", e.incident ? el("div", {}, el("a", { class: "incident-link", href: "#/incident/" + enc(e.incident), text: e.incident })) : ""),
      el("td", {}, auditWhat(e)),
      el("td", {}, e.break_glass ? [el("b", { class: "err", text: "BREAK-GLASS" }), " "] : "", e.reason || "",
        e.approver ? ` (approved by ${e.approver})` : "", e.approval ? [" ", el("a", { href: "#/approvals", text: "request " + e.approval })] : ""))));
    if (!r.entries.length) tbody.append(el("tr", {}, el("td", { colspan: 6, class: "muted", text: "No entries match." })));
  };
  for (const x of Object.values(f)) x.addEventListener("change", () => load().catch(showError));
  every(5000, load);
}

// ---- start -----------------------------------------------------------------

document.getElementById("signout").addEventListener("click", () => signOut());
window.addEventListener("hashchange", route);
setInterval(tickLive, 1000);
// The tab's title and favicon follow the breakers on every page.
setInterval(() => {
  if (app.me && location.hash.split("/")[1]) get("/v1/breakers").then((r) => showHolding(r.breakers)).catch(() => {});
}, 5000);
route();
