-- Breakwater: count one batch and decide its breakers, atomically.
-- Mirrors breaker.Window, breaker.Evaluate and breaker.Expire; the Go tests
-- compare the two on the same inputs.
--
-- KEYS[1] epoch marker, KEYS[2] scope set,
-- KEYS[3 .. 2+P] decision records per partition (field 'floor', then one
--   field per batch: first offset -> 'last|payload'),
-- then per scope: status hash, ring hash, evidence hash. The script
--   touches no other key.
-- ARGV (the layout and the ring sizes are defined in redis.go, and passed
-- here so that Go and Lua read one definition):
--   head: P, S, record ttl ms, ring ttl ms, FINE (fine buckets per window),
--     COARSE (coarse buckets per baseline), GRACE (fine buckets an action
--     may lag), FRING (fine ring slots), HEAD (arguments in the head),
--     PSTRIDE (arguments per partition), SSTRIDE (arguments per scope
--     before its buckets), reference scope (1-based, 0 none: the scope
--     whose first counted action marks when counting began), BSTRIDE
--     (arguments per bucket), RELEASE (breaker.ReleaseMargin);
--   per partition: first offset, last offset, prune records that end below this;
--   per scope: name, fine, coarse, gridwindow, max, factor, min, autoclose,
--     probation, pscale, disabled, nbuckets, CRING (coarse ring slots),
--     learning ms, learning max, hold contributors, contributor factor,
--     evidence on, bin ms, ratio r, ln r, threshold h, min expected, most
--     bins learned per hour of the day, bins per hour of the day, most
--     empty bins closed one by one, evidence ttl ms, seasonal slot ms,
--     seed (1-based scope whose ring and detector a new-only scope starts
--     from when first seen; 0 none), new only (1: trips only within
--     learning ms of its first action, the ring's 'born'; -1 is dormant),
--     then nbuckets buckets (at, weight, count, then BSTRIDE - 3 via): via
--     are earlier scopes (1-based, 0 none, the nonzero first) whose
--     holding leaves the bucket uncounted.
-- The payload of each record is filled in here, after the decisions.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'LOST'}
end

local P = tonumber(ARGV[1])
local S = tonumber(ARGV[2])
local rttl = tonumber(ARGV[3])
local ringttl = tonumber(ARGV[4])
local FINE, COARSE, GRACE, FRING = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local HEAD, PSTRIDE, SSTRIDE = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local refscope, BSTRIDE = tonumber(ARGV[12]), tonumber(ARGV[13])
local NV = BSTRIDE - 3
local RELEASE = tonumber(ARGV[14])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- The records of a partition are complete from its floor on: every offset
-- at or above it that was decided has its record. Below the floor records
-- were dropped as committed; with no floor they were lost (Redis lost its
-- data) or expired. Such offsets may have been decided and written: the
-- caller rebuilds their records from the output topics first.
local unknown = {}
for i = 1, P do
  local fl = redis.call('HGET', KEYS[2 + i], 'floor')
  if not fl or tonumber(ARGV[HEAD + (i - 1) * PSTRIDE + 1]) < tonumber(fl) then
    table.insert(unknown, tostring(i))
  end
end
if #unknown > 0 then
  table.insert(unknown, 1, 'UNKNOWN')
  return unknown
end

-- Redelivered offsets: answer from the records, count nothing.
local replay = {}
for i = 1, P do
  local key = KEYS[2 + i]
  local base = HEAD + (i - 1) * PSTRIDE
  local first, last, prune = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  -- A batch below the caller's committed offset means the group's offset
  -- moved back (a stale commit, a rewind): keep what it may need.
  if prune > first then prune = first end
  local recs = redis.call('HGETALL', key)
  local floor = nil
  for j = 1, #recs, 2 do
    local rf = tonumber(recs[j])
    local sep = string.find(recs[j + 1], '|', 1, true)
    local rl = sep and tonumber(string.sub(recs[j + 1], 1, sep - 1))
    if recs[j] == 'floor' then
      -- not a record
    elseif rl < prune then
      redis.call('HDEL', key, recs[j])
      if floor == nil or rl + 1 > floor then floor = rl + 1 end
    elseif rf <= last and rl >= first then
      table.insert(replay, tostring(i))
      table.insert(replay, recs[j])
      table.insert(replay, string.sub(recs[j + 1], 1, sep - 1))
      table.insert(replay, string.sub(recs[j + 1], sep + 1))
    end
  end
  if floor ~= nil and floor > tonumber(redis.call('HGET', key, 'floor')) then
    redis.call('HSET', key, 'floor', floor)
  end
end
if #replay > 0 then
  table.insert(replay, 1, 'REPLAY')
  return replay
end

local function floordiv(a, b) return math.floor(a / b) end

-- numbers that must survive a round trip exactly
local function f17(v) return string.format('%.17g', v) end

local function num(v) if v == nil or v == '' then return 0 end return tonumber(v) end

local function exceeded(pol, win, base, ready, learning, probation, ev, eready)
  if pol.disabled or (pol.newonly and not learning) then return nil end
  local scale = 1.0
  if probation and pol.pscale > 0 then scale = pol.pscale end
  local w = win / 1000
  if pol.max > 0 and w > pol.max * scale then return 'max_actions' end
  if learning and pol.lmax > 0 and w > pol.lmax * scale then return 'new_rule' end
  local baseline = base * pol.gw / (COARSE * pol.coarse) / 1000
  if pol.factor > 0 and ready and w >= pol.min * scale and w > pol.factor * baseline then
    return 'baseline_factor'
  end
  if pol.evon and eready and ev >= pol.eh then return 'evidence' end
  return nil
end

local function manual(st) return st == 'forced_open' or st == 'forced_closed' or st == 'shadow' end

local function moved(n, prevgen)
  if not manual(n.st) then
    n.st = n.au
    n.si = now
    n.ac = ''
  end
  n.g = prevgen + 1
end

-- when counting began: the first action of the reference scope's ring,
-- before this batch
local ref = nil
if refscope > 0 then
  local rh = redis.call('HMGET', KEYS[2 + P + 3 * refscope - 1], 'first', 'top')
  if rh[2] then ref = tonumber(rh[1]) end
end

-- the scopes decided so far in this batch, for the wider ones
local done = {}

-- contributors mirrors breaker.Contributors: the narrower scopes a wider
-- one that just tripped holds alone, '' for everything.
local function contributors(pol, win, base, exp, reason, probation, countsheld, kids, deep)
  if not pol.holdc then return '' end
  local scale = 1.0
  if probation and pol.pscale > 0 then scale = pol.pscale end
  local limit
  if reason == 'max_actions' then
    limit = pol.max * scale
  elseif reason == 'baseline_factor' then
    limit = pol.factor * (base * pol.gw / (COARSE * pol.coarse) / 1000)
  elseif reason == 'new_rule' then
    limit = pol.lmax * scale
  elseif reason == 'evidence' then
    limit = (base * pol.gw / (COARSE * pol.coarse) / 1000) * (pol.eratio - 1) / pol.elnr
  else
    return ''
  end
  local out = {}
  local rest, open = win / 1000, 0
  for _, k in ipairs(kids) do
    local d = done[k]
    if d.holds and countsheld then
      open = open + 1
      table.insert(out, d.name)
      rest = rest - d.win / 1000
    elseif not d.holds then
      open = open + 1
      local w = d.win / 1000
      if w > 0 and (not d.ready or w > pol.cfactor * (d.base * d.gw / (COARSE * d.coarse) / 1000)) then
        table.insert(out, d.name)
        rest = rest - w
      end
    end
  end
  if reason == 'evidence' and #out == 0 and rest <= limit then
    for _, k in ipairs(kids) do
      if done[k].holds then table.insert(out, done[k].name) end
    end
    -- a deeper scope that holds (a rule's model version) holds nothing new
    if #out == 0 then
      for _, k in ipairs(deep) do table.insert(out, done[k].name) end
    end
    if #out > 0 then return table.concat(out, '\n') end
  end
  if #out == 0 or 2 * #out >= open or rest > limit then return '' end
  return table.concat(out, '\n')
end

local out = {'OK'}
local holding = {}
local argi = HEAD + P * PSTRIDE
local ki = 2 + P
for s = 1, S do
  local name = ARGV[argi + 1]
  local pol = {
    fine = tonumber(ARGV[argi + 2]), coarse = tonumber(ARGV[argi + 3]), gw = tonumber(ARGV[argi + 4]),
    max = tonumber(ARGV[argi + 5]), factor = tonumber(ARGV[argi + 6]), min = tonumber(ARGV[argi + 7]),
    autoclose = tonumber(ARGV[argi + 8]), probation = tonumber(ARGV[argi + 9]),
    pscale = tonumber(ARGV[argi + 10]), disabled = ARGV[argi + 11] == '1',
    learning = tonumber(ARGV[argi + 14]), lmax = tonumber(ARGV[argi + 15]),
    holdc = ARGV[argi + 16] == '1', cfactor = tonumber(ARGV[argi + 17]),
    evon = ARGV[argi + 18] == '1', ebin = tonumber(ARGV[argi + 19]), eratio = tonumber(ARGV[argi + 20]),
    elnr = tonumber(ARGV[argi + 21]), eh = tonumber(ARGV[argi + 22]), emin = tonumber(ARGV[argi + 23]),
    ecap = tonumber(ARGV[argi + 24]), eslot = tonumber(ARGV[argi + 25]), egap = tonumber(ARGV[argi + 26]),
    ettl = tonumber(ARGV[argi + 27]), eslotms = tonumber(ARGV[argi + 28]),
    seed = tonumber(ARGV[argi + 29]), newonly = ARGV[argi + 30] == '1',
  }
  pol.eseason = pol.eslotms * 24
  local skey, rkey, ekey = KEYS[ki + 1], KEYS[ki + 2], KEYS[ki + 3]
  ki = ki + 3

  -- a scope that trips only while new (a model version: decide.newOnly)
  -- keeps when it was born in its ring: first seen, it starts from a copy
  -- of its seed's ring and detector if the seed has counts, and is dormant
  -- (born -1: it counts nothing) otherwise, or once learning has passed
  local nb = tonumber(ARGV[argi + 12])
  local dormant, born = false, nil
  if pol.newonly and nb > 0 then
    local lo, hi = nil, nil
    for b = 1, nb do
      local at = tonumber(ARGV[argi + SSTRIDE + (b - 1) * BSTRIDE + 1])
      if lo == nil or at < lo then lo = at end
      if hi == nil or at > hi then hi = at end
    end
    local bo = redis.call('HGET', rkey, 'born')
    born = bo and tonumber(bo) or 0
    if born == 0 then
      redis.call('DEL', rkey, ekey)
      born = -1
      if pol.seed > 0 then
        local h = redis.call('HGETALL', KEYS[2 + P + 3 * pol.seed - 1])
        local has = false
        for j = 1, #h, 2 do
          if h[j] == 'top' then has = true end
        end
        if has then
          for k = 1, #h, 1000 do
            redis.call('HSET', rkey, unpack(h, k, math.min(k + 999, #h)))
          end
          born = lo
          local he = redis.call('HGETALL', KEYS[2 + P + 3 * pol.seed])
          if #he > 0 then
            for k = 1, #he, 1000 do
              redis.call('HSET', ekey, unpack(he, k, math.min(k + 999, #he)))
            end
            redis.call('PEXPIRE', ekey, pol.ettl)
          end
        end
      end
    end
    if born > 0 and hi - born >= pol.learning then
      redis.call('DEL', rkey, ekey)
      born = -1
    end
    redis.call('HSET', rkey, 'born', born)
    redis.call('PEXPIRE', rkey, ringttl)
    dormant = born < 0
    if dormant then born = nil end
  end

  -- status
  local h = redis.call('HGETALL', skey)
  local cur = {}
  for j = 1, #h, 2 do cur[h[j]] = h[j + 1] end
  local n = {
    st = cur.st or 'closed', au = cur.au or 'closed', g = num(cur.g), si = num(cur.si), ta = num(cur.ta),
    re = cur.re or '', ac = cur.ac or '', un = num(cur.un), pu = num(cur.pu), hs = cur.hs or '',
    on = num(cur.on), tc = cur.tc or '',
  }
  local startgen = n.g
  -- expire an override
  if manual(n.st) and n.un > 0 and now >= n.un then
    n.st = n.au
    n.g = n.g + 1
    n.si = now
    n.re = 'override expired'
    n.ac = ''
    n.un = 0
  end

  -- the buckets: those whose narrower scopes hold are not counted here,
  -- except open and on probation (breaker.CountsHeld)
  local all = n.au == 'probation' or n.au == 'open'
  -- (the evidence detector counts every bucket: allat, allcnt, and
  -- allc[b] is the index in bat of a bucket the window counts)
  local bat, bwt, kids, seenkid = {}, {}, {}, {}
  local allat, allcnt, allc, allres = {}, {}, {}, {}
  for b = 1, nb do
    local o = argi + SSTRIDE + (b - 1) * BSTRIDE
    local v1 = 0
    if NV > 0 then v1 = tonumber(ARGV[o + 4]) end
    if v1 > 0 and not seenkid[v1] then
      seenkid[v1] = true
      table.insert(kids, v1)
    end
    local flows = not dormant
    if flows then
      for k = 1, NV do
        local v = tonumber(ARGV[o + 3 + k])
        if v == 0 then break end
        if done[v].holds then
          flows = false
          break
        end
      end
    end
    local counted = (all and not dormant) or flows
    if counted then
      table.insert(bat, tonumber(ARGV[o + 1]))
      table.insert(bwt, tonumber(ARGV[o + 2]))
    end
    if counted or (pol.evon and pol.holdc) then
      table.insert(allat, tonumber(ARGV[o + 1]))
      table.insert(allcnt, tonumber(ARGV[o + 3]))
      allres[#allat] = flows and tonumber(ARGV[o + 3]) or 0
      allc[#allat] = counted and #bat or nil
    end
  end
  local nc = #bat

  -- the evidence detector (breaker.Evidence)
  local E = nil
  if pol.evon and not dormant then
    -- the header now, an hour of the day's mean and count when first read
    local h = redis.call('HMGET', ekey, 'b', 'p', 'c', 't', 'x', 's', 'o', 'dv', 'dn', 'f', 'l', 'r', 'xr', 'ox', 'om', 'de')
    local function nz(v) if not v then return 0 end return tonumber(v) end
    E = {bin = pol.ebin, seen = false, cur = 0, top = 0, x = 0, s = 0, o = 0, dv = 0, dn = 0, held = false,
      l = 0, r = 0, xr = 0, ox = 0, om = 0, de = 0, dirty = {}}
    local stored = h[1] and tonumber(h[1]) == pol.ebin and tonumber(h[2]) == pol.eseason
    if stored then
      E.seen = h[3] ~= false
      E.cur, E.top, E.x, E.s, E.o = nz(h[3]), nz(h[4]), nz(h[5]), nz(h[6]), nz(h[7])
      E.dv, E.dn = nz(h[8]), nz(h[9])
      E.held = h[10] == '1'
      E.l, E.r, E.xr = nz(h[11]), nz(h[12]), nz(h[13])
      E.ox, E.om, E.de = nz(h[14]), nz(h[15]), nz(h[16])
    elseif h[1] then
      redis.call('DEL', ekey)
    end
    local ex, cn = {}, {}
    local function load(k)
      if stored then
        local v = redis.call('HMGET', ekey, 'e' .. k, 'n' .. k)
        rawset(ex, k, nz(v[1])); rawset(cn, k, nz(v[2]))
      else
        rawset(ex, k, 0); rawset(cn, k, 0)
      end
    end
    E.ex = setmetatable(ex, {__index = function(_, k) load(k); return rawget(ex, k) end})
    E.n = setmetatable(cn, {__index = function(_, k) load(k); return rawget(cn, k) end})
  end
  local function eslot(idx) return math.floor(((idx * E.bin) % pol.eseason) / pol.eslotms) end
  local function eexp(idx)
    local k = eslot(idx)
    if E.n[k] < pol.eslot then return 0, false end
    local slot = pol.eslotms
    local pos = ((idx * E.bin + math.floor(E.bin / 2)) % pol.eseason) - math.floor(slot / 2)
    local k0 = floordiv(pos, slot)
    local w = (pos - k0 * slot) / slot
    local a, b = k0 % 24, (k0 + 1) % 24
    local mu = E.ex[k]
    if E.n[a] >= pol.eslot and E.n[b] >= pol.eslot then
      mu = E.ex[a] * (1 - w) + E.ex[b] * w
    end
    if pol.emin > mu then mu = pol.emin end
    return mu, true
  end
  local function ephi()
    if E.dv > 1 then return E.dv end
    return 1
  end
  local function eclose(frozen)
    local x = E.x
    local prev = E.s
    local mu, ok = eexp(E.cur)
    if ok then
      local sv = E.s + (x * pol.elnr - (pol.eratio - 1) * mu) / ephi()
      local rv = E.r + (E.xr * pol.elnr - (pol.eratio - 1) * mu) / ephi()
      if E.xr < E.x and rv < E.r then rv = E.r end
      if frozen then
        E.l = E.l + (sv - E.s)
        -- breaker.Evidence.End: the rise ended, against the rise measured
        E.ox = E.ox + x
        E.om = E.om + mu
        local rho = E.ox / E.om
        if rho < pol.eratio then rho = pol.eratio end
        local de = E.de + ((rho - 1) * mu - x * math.log(rho)) / ephi()
        if not (de > 0) then de = 0 end
        E.de = de
        if sv > pol.eh then sv = pol.eh end
        if rv > pol.eh then rv = pol.eh end
      end
      if not (sv > 0) then sv = 0 end
      if not (rv > 0) then rv = 0 end
      E.s, E.r = sv, rv
    end
    if E.s == 0 then
      E.o = 0
    elseif prev == 0 then
      E.o = E.cur * E.bin
    end
    if not frozen and not (prev >= pol.eh / 2) then
      local k = eslot(E.cur)
      if not ok and E.n[k] > 0 then mu = E.ex[k] end
      if mu >= 1 then
        local d = x - mu
        local dn = E.dn + 1
        if dn > pol.ecap then dn = pol.ecap end
        E.dn = dn
        E.dv = E.dv + (d * d / mu - E.dv) / dn
      end
      local cnt = E.n[k] + 1
      if cnt > pol.ecap then cnt = pol.ecap end
      E.n[k] = cnt
      E.ex[k] = E.ex[k] + (x - E.ex[k]) / cnt
      E.dirty[k] = true
    end
    E.x, E.xr = 0, 0
  end
  local function eadd(at, w, wr, frozen)
    local bi = floordiv(at, E.bin)
    if not E.seen then
      E.cur, E.top, E.seen = bi, at, true
    end
    if at > E.top then E.top = at end
    if bi > E.cur then
      local fz = frozen or E.held
      eclose(fz)
      local gap = bi - E.cur - 1
      if gap > pol.egap then
        E.s, E.r, E.o = 0, 0, 0
      else
        for _ = 1, gap do
          E.cur = E.cur + 1
          eclose(fz)
        end
      end
      E.cur = bi
    end
    -- released (breaker.ReleaseMargin): S starts again unless near h
    if E.held and not frozen and (E.s < pol.eh - RELEASE or E.l < 0 or E.de >= RELEASE) then
      E.s, E.r, E.o = 0, 0, 0
    end
    if frozen and not E.held then E.l, E.ox, E.om, E.de = 0, 0, 0, 0 end
    E.held = frozen
    E.x = E.x + w
    E.xr = E.xr + wr
  end
  local function echeck()
    local x = E.x
    local mu, ok = eexp(E.cur)
    if not ok then return E.s, 0, x, false end
    local d = E.top - E.cur * E.bin + pol.fine
    if d < 0 then d = 0 end
    if d > E.bin then d = E.bin end
    local f = d / E.bin
    local sv = E.s + (x * pol.elnr - (pol.eratio - 1) * mu * f) / ephi()
    if not (sv > 0) then sv = 0 end
    if pol.holdc then
      -- breaker.Evidence.Residual: the residual evidence gates the trip
      local rv = E.r + (E.xr * pol.elnr - (pol.eratio - 1) * mu * f) / ephi()
      if not (rv > 0) then rv = 0 end
      if rv + pol.eh / 2 < sv then sv = rv + pol.eh / 2 end
    end
    return sv, mu, x, true
  end

  -- ring: slot idx % FRING of the fine ring holds the count of fine bucket
  -- idx for every idx in (topF - FRING, topF], where topF is the fine
  -- bucket of the watermark top; the same for the coarse ring. Slots are
  -- cleared as the watermark moves past them, so they hold counts only.
  local first, top = nil, nil
  if not dormant then
    local hdr = redis.call('HMGET', rkey, 'first', 'top')
    first = hdr[1] and tonumber(hdr[1]) or nil
    top = hdr[2] and tonumber(hdr[2]) or nil
  end
  -- (a new-only scope's ring without a top holds its dormant mark)
  if top == nil and not pol.newonly then
    first = nil
    redis.call('DEL', rkey)
  end
  local CRING = tonumber(ARGV[argi + 13])
  local topF0 = top and floordiv(top, pol.fine)
  local topC0 = top and floordiv(top, pol.coarse)
  -- where each bucket counts (its own time, or the watermark if it lags it
  -- by more than the grace period), and the buckets the batch reads
  local effs = {}
  local loF, hiF, loC, hiC
  do
    local tp = top
    for b = 1, nc do
      local at = bat[b]
      if tp == nil or at > tp then tp = at end
      if floordiv(at, pol.fine) < floordiv(tp, pol.fine) - GRACE then at = tp end
      effs[b] = at
      local fi, ci = floordiv(at, pol.fine), floordiv(at, pol.coarse)
      if loF == nil or fi - FINE + 1 < loF then loF = fi - FINE + 1 end
      if hiF == nil or fi > hiF then hiF = fi end
      if loC == nil or ci - COARSE < loC then loC = ci - COARSE end
      if hiC == nil or ci > hiC then hiC = ci end
    end
  end
  local fc, cc = {}, {}
  if top ~= nil and nc > 0 then
    local fields, owners = {}, {}
    for j = loF, math.min(hiF, topF0) do
      table.insert(fields, 'f' .. (j % FRING)); table.insert(owners, j)
    end
    local nf = #fields
    for j = loC, math.min(hiC, topC0) do
      table.insert(fields, 'c' .. (j % CRING)); table.insert(owners, j)
    end
    for k = 1, #fields, 1000 do
      local last = math.min(k + 999, #fields)
      local part = redis.call('HMGET', rkey, unpack(fields, k, last))
      for i = k, last do
        local v = part[i - k + 1]
        if v then
          if i <= nf then fc[owners[i]] = tonumber(v) or 0 else cc[owners[i]] = tonumber(v) or 0 end
        end
      end
    end
  end
  local dirtyF, dirtyC = {}, {}
  local lastwin, lastbase, lastready = 0, 0, false
  local lastlearn = false
  local lastev, lastexp, lastobs, lasteready = 0, 0, 0, false
  local tripwin, tripbase, tripready, triplearn, tripprob = nil, nil, nil, nil, false
  local tripev, tripexp, tripobs, tripeready = 0, 0, 0, false

  for ab = 1, #allat do
    local b = allc[ab]
    local at = allat[ab]
    if E then
      eadd(at, allcnt[ab], allres[ab], n.au == 'open' or n.st == 'open' or n.st == 'forced_open')
    end
    if b then
    local wt = bwt[b]
    if first == nil or at < first then first = at end
    if top == nil or at > top then top = at end
    at = effs[b]
    local fi = floordiv(at, pol.fine)
    fc[fi] = (fc[fi] or 0) + wt; dirtyF[fi] = true
    local ci = floordiv(at, pol.coarse)
    cc[ci] = (cc[ci] or 0) + wt; dirtyC[ci] = true
    -- counts over the window that ends at this bucket
    local win = 0
    for j = fi - FINE + 1, fi do
      local v = fc[j]
      if v then win = win + v end
    end
    local base = 0
    for j = ci - COARSE, ci - 1 do
      local v = cc[j]
      if v then base = base + v end
    end
    local ready = (at - first) >= COARSE * pol.coarse
    local learning = ref ~= nil and pol.learning > 0 and first - ref >= pol.learning and at - first < pol.learning
    if pol.newonly then learning = born ~= nil and at - born < pol.learning end
    lastwin, lastbase, lastready, lastlearn = win, base, ready, learning
    end
    if E then
      lastev, lastexp, lastobs, lasteready = echeck()
    end
    -- evaluate
    local prevgen = n.g
    if n.au == 'closed' or n.au == 'probation' then
      local why = exceeded(pol, lastwin, lastbase, lastready, lastlearn, n.au == 'probation', lastev, lasteready)
      if why then
        tripprob = n.au == 'probation'
        n.au = 'open'; n.ta = now; n.pu = 0; n.re = why; n.hs = ''
        moved(n, prevgen)
        tripwin, tripbase, tripready, triplearn = lastwin, lastbase, lastready, lastlearn
        tripev, tripexp, tripobs, tripeready = lastev, lastexp, lastobs, lasteready
        -- the figures at the trip (breaker.Trip), as statusFields writes them
        n.tc = table.concat({f17(lastwin / 1000), f17(lastbase * pol.gw / (COARSE * pol.coarse) / 1000),
          lastready and '1' or '0', lastlearn and '1' or '0', f17(lastev), f17(lastexp), f17(lastobs),
          lasteready and '1' or '0', tripprob and '1' or '0'}, '\t')
        if why == 'evidence' then
          n.on = E.o
          if n.on == 0 then n.on = E.cur * E.bin end
        else
          n.on = floordiv(at, pol.fine) * pol.fine - pol.gw + pol.fine
        end
      elseif n.au == 'probation' and now >= n.pu then
        n.au = 'closed'; n.pu = 0; n.re = 'probation ended'
        moved(n, prevgen)
      end
    elseif n.au == 'open' then
      if pol.autoclose > 0 and now - n.ta >= pol.autoclose then
        n.au = 'probation'; n.pu = now + pol.probation; n.re = 'auto close'; n.hs = ''
        moved(n, prevgen)
      end
    end
  end

  if tripwin and n.au == 'open' then
    -- the deeper scopes that hold (Via after the first), in order
    local deep, seendeep = {}, {}
    for _, k in ipairs(kids) do seendeep[k] = true end
    for b = 1, nb do
      local o = argi + SSTRIDE + (b - 1) * BSTRIDE
      for k = 2, NV do
        local v = tonumber(ARGV[o + 3 + k])
        if v == 0 then break end
        if not seendeep[v] and done[v].holds then
          seendeep[v] = true
          table.insert(deep, v)
        end
      end
    end
    n.hs = contributors(pol, tripwin, tripbase, tripexp, n.re, tripprob, all, kids, deep)
  end

  -- write back the ring: the counts the batch changed, and clear the slots
  -- the watermark moved onto
  if nc > 0 then
    -- A bucket counted before the watermark moved on in this batch may
    -- have left the ring: its slot now belongs to a newer bucket.
    local topF, topC = floordiv(top, pol.fine), floordiv(top, pol.coarse)
    local hs = {}
    for j, _ in pairs(dirtyF) do
      if j > topF - FRING then
        table.insert(hs, 'f' .. (j % FRING)); table.insert(hs, tostring(fc[j]))
      end
    end
    for j, _ in pairs(dirtyC) do
      if j > topC - CRING then
        table.insert(hs, 'c' .. (j % CRING)); table.insert(hs, tostring(cc[j]))
      end
    end
    table.insert(hs, 'first'); table.insert(hs, tostring(first))
    table.insert(hs, 'top'); table.insert(hs, tostring(top))
    local del = {}
    if topF0 ~= nil then
      for j = math.max(topF0 + 1, topF - FRING + 1), topF do
        if not dirtyF[j] then table.insert(del, 'f' .. (j % FRING)) end
      end
      for j = math.max(topC0 + 1, topC - CRING + 1), topC do
        if not dirtyC[j] then table.insert(del, 'c' .. (j % CRING)) end
      end
    end
    for k = 1, #del, 1000 do
      redis.call('HDEL', rkey, unpack(del, k, math.min(k + 999, #del)))
    end
    for k = 1, #hs, 1000 do
      redis.call('HSET', rkey, unpack(hs, k, math.min(k + 999, #hs)))
    end
    redis.call('PEXPIRE', rkey, ringttl)
  end

  if E and E.seen then
    local hs = {'b', E.bin, 'p', pol.eseason, 'c', f17(E.cur), 't', f17(E.top), 'x', f17(E.x), 's', f17(E.s), 'o', f17(E.o),
      'dv', f17(E.dv), 'dn', f17(E.dn), 'f', E.held and '1' or '0', 'l', f17(E.l), 'r', f17(E.r), 'xr', f17(E.xr),
      'ox', f17(E.ox), 'om', f17(E.om), 'de', f17(E.de)}
    for k, _ in pairs(E.dirty) do
      table.insert(hs, 'e' .. k); table.insert(hs, f17(E.ex[k]))
      table.insert(hs, 'n' .. k); table.insert(hs, f17(E.n[k]))
    end
    redis.call('HSET', ekey, unpack(hs))
    redis.call('PEXPIRE', ekey, pol.ettl)
  end

  local changed = n.g ~= startgen
  if changed then
    redis.call('HSET', skey, 'st', n.st, 'au', n.au, 'g', n.g, 'si', n.si, 'ta', n.ta,
      're', n.re, 'ac', n.ac, 'un', n.un, 'pu', n.pu, 'hs', n.hs, 'on', n.on, 'tc', n.tc)
    redis.call('SADD', KEYS[2], name)
  end
  local holds = n.st == 'open' or n.st == 'forced_open'
  if holds then
    local line = n.g .. '\t' .. name
    if n.st == 'open' and n.hs ~= '' then
      line = line .. '\t' .. string.gsub(n.hs, '\n', '\t')
    end
    table.insert(holding, line)
  end
  local cw, cb, cr, cl = lastwin, lastbase, lastready, lastlearn
  local cev, cexp, cobs, cer = lastev, lastexp, lastobs, lasteready
  if tripwin then
    cw, cb, cr, cl = tripwin, tripbase, tripready, triplearn
    cev, cexp, cobs, cer = tripev, tripexp, tripobs, tripeready
  end
  done[s] = {name = name, holds = holds, win = cw, base = cb, ready = cr, gw = pol.gw, coarse = pol.coarse}
  for _, v in ipairs({name, n.st, n.au, n.g, n.si, n.ta, n.re, n.ac, n.un, n.pu,
      changed and '1' or '0', cw, cb, cr and '1' or '0', cl and '1' or '0', n.hs, f17(n.on), n.tc,
      f17(cev), f17(cexp), f17(cobs), cer and '1' or '0'}) do
    table.insert(out, tostring(v))
  end
  argi = argi + SSTRIDE + nb * BSTRIDE
end

-- record the batch's decisions per partition, for redeliveries
local payload = table.concat(holding, '\n')
for i = 1, P do
  local base = HEAD + (i - 1) * PSTRIDE
  redis.call('HSET', KEYS[2 + i], ARGV[base + 1], ARGV[base + 2] .. '|' .. payload)
  redis.call('PEXPIRE', KEYS[2 + i], rttl)
end
table.insert(out, 2, tostring(now))
return out
