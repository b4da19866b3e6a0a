-- Breakwater: count one batch and decide its breakers, atomically.
-- Mirrors breaker.Window, breaker.Evaluate and breaker.Expire; the Go tests
-- compare the two on the same inputs.
--
-- KEYS[1] epoch marker, KEYS[2] scope set,
-- KEYS[3 .. 2+P] decision records per partition,
-- then per scope: status hash, ring hash.
-- ARGV: P, S, record ttl ms, ring ttl ms,
--   per partition: first offset, last offset, prune records that end below this,
--   per scope: name, fine, coarse, gridwindow, max, factor, min, autoclose,
--     probation, pscale, disabled, nbuckets, then nbuckets pairs (at, weight).
-- The payload of each record is filled in here, after the decisions.
local FINE, COARSE = 20, 30

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'LOST'}
end

local P = tonumber(ARGV[1])
local S = tonumber(ARGV[2])
local rttl = tonumber(ARGV[3])
local ringttl = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- Redelivered offsets: answer from the records, count nothing.
local replay = {}
for i = 1, P do
  local key = KEYS[2 + i]
  local base = 4 + (i - 1) * 3
  local first, last, prune = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  local recs = redis.call('HGETALL', key)
  for j = 1, #recs, 2 do
    local rf = tonumber(recs[j])
    local sep = string.find(recs[j + 1], '|', 1, true)
    local rl = tonumber(string.sub(recs[j + 1], 1, sep - 1))
    if rl < prune then
      redis.call('HDEL', key, recs[j])
    elseif rf <= last and rl >= first then
      table.insert(replay, tostring(i))
      table.insert(replay, recs[j])
      table.insert(replay, string.sub(recs[j + 1], 1, sep - 1))
      table.insert(replay, string.sub(recs[j + 1], sep + 1))
    end
  end
end
if #replay > 0 then
  table.insert(replay, 1, 'REPLAY')
  return replay
end

local function floordiv(a, b) return math.floor(a / b) end

local function num(v) if v == nil or v == '' then return 0 end return tonumber(v) end

local function exceeded(pol, win, base, ready, probation)
  if pol.disabled then return nil end
  local scale = 1.0
  if probation and pol.pscale > 0 then scale = pol.pscale end
  local w = win / 1000
  if pol.max > 0 and w > pol.max * scale then return 'max_actions' end
  local baseline = base * pol.gw / (COARSE * pol.coarse) / 1000
  if pol.factor > 0 and ready and w >= pol.min * scale and w > pol.factor * baseline then
    return 'baseline_factor'
  end
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

local out = {'OK'}
local holding = {}
local argi = 4 + P * 3
local ki = 2 + P
for s = 1, S do
  local name = ARGV[argi + 1]
  local pol = {
    fine = tonumber(ARGV[argi + 2]), coarse = tonumber(ARGV[argi + 3]), gw = tonumber(ARGV[argi + 4]),
    max = tonumber(ARGV[argi + 5]), factor = tonumber(ARGV[argi + 6]), min = tonumber(ARGV[argi + 7]),
    autoclose = tonumber(ARGV[argi + 8]), probation = tonumber(ARGV[argi + 9]),
    pscale = tonumber(ARGV[argi + 10]), disabled = ARGV[argi + 11] == '1',
  }
  local nb = tonumber(ARGV[argi + 12])
  local skey, rkey = KEYS[ki + 1], KEYS[ki + 2]
  ki = ki + 2

  -- status
  local h = redis.call('HGETALL', skey)
  local cur = {}
  for j = 1, #h, 2 do cur[h[j]] = h[j + 1] end
  local n = {
    st = cur.st or 'closed', au = cur.au or 'closed', g = num(cur.g), si = num(cur.si), ta = num(cur.ta),
    re = cur.re or '', ac = cur.ac or '', un = num(cur.un), pu = num(cur.pu),
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

  -- ring
  local r = redis.call('HGETALL', rkey)
  local ring = {}
  for j = 1, #r, 2 do ring[r[j]] = r[j + 1] end
  local fidx, fcnt, cidx, ccnt = {}, {}, {}, {}
  for j = 0, FINE - 1 do
    local v = ring['f' .. j]
    if v then
      local c = string.find(v, ':', 1, true)
      fidx[j] = tonumber(string.sub(v, 1, c - 1)); fcnt[j] = tonumber(string.sub(v, c + 1))
    else
      fidx[j] = 0; fcnt[j] = 0
    end
  end
  for j = 0, COARSE do
    local v = ring['c' .. j]
    if v then
      local c = string.find(v, ':', 1, true)
      cidx[j] = tonumber(string.sub(v, 1, c - 1)); ccnt[j] = tonumber(string.sub(v, c + 1))
    else
      cidx[j] = 0; ccnt[j] = 0
    end
  end
  local first = ring.first and tonumber(ring.first) or nil
  local dirtyF, dirtyC = {}, {}
  local lastwin, lastbase, lastready = 0, 0, false
  local tripwin, tripbase, tripready = nil, nil, nil

  for b = 1, nb do
    local at = tonumber(ARGV[argi + 12 + (b - 1) * 2 + 1])
    local wt = tonumber(ARGV[argi + 12 + (b - 1) * 2 + 2])
    if first == nil or at < first then first = at end
    local fi = floordiv(at, pol.fine)
    local fs = fi % FINE
    if fidx[fs] == fi and fcnt[fs] ~= 0 then
      fcnt[fs] = fcnt[fs] + wt; dirtyF[fs] = true
    elseif fcnt[fs] == 0 or fidx[fs] < fi then
      fidx[fs] = fi; fcnt[fs] = wt; dirtyF[fs] = true
    end
    local ci = floordiv(at, pol.coarse)
    local cs = ci % (COARSE + 1)
    if cidx[cs] == ci and ccnt[cs] ~= 0 then
      ccnt[cs] = ccnt[cs] + wt; dirtyC[cs] = true
    elseif ccnt[cs] == 0 or cidx[cs] < ci then
      cidx[cs] = ci; ccnt[cs] = wt; dirtyC[cs] = true
    end
    -- counts at this bucket
    local win = 0
    for j = 0, FINE - 1 do
      if fcnt[j] ~= 0 and fidx[j] > fi - FINE and fidx[j] <= fi then win = win + fcnt[j] end
    end
    local base = 0
    for j = 0, COARSE do
      if ccnt[j] ~= 0 and cidx[j] >= ci - COARSE and cidx[j] < ci then base = base + ccnt[j] end
    end
    local ready = (at - first) >= COARSE * pol.coarse
    lastwin, lastbase, lastready = win, base, ready
    -- evaluate
    local prevgen = n.g
    if n.au == 'closed' or n.au == 'probation' then
      local why = exceeded(pol, win, base, ready, n.au == 'probation')
      if why then
        n.au = 'open'; n.ta = now; n.pu = 0; n.re = why
        moved(n, prevgen)
        tripwin, tripbase, tripready = win, base, ready
      elseif n.au == 'probation' and now >= n.pu then
        n.au = 'closed'; n.pu = 0; n.re = 'probation ended'
        moved(n, prevgen)
      end
    elseif n.au == 'open' then
      if pol.autoclose > 0 and now - n.ta >= pol.autoclose then
        n.au = 'probation'; n.pu = now + pol.probation; n.re = 'auto close'
        moved(n, prevgen)
      end
    end
  end

  -- write back the ring
  local hs = {}
  for j, _ in pairs(dirtyF) do
    table.insert(hs, 'f' .. j); table.insert(hs, fidx[j] .. ':' .. fcnt[j])
  end
  for j, _ in pairs(dirtyC) do
    table.insert(hs, 'c' .. j); table.insert(hs, cidx[j] .. ':' .. ccnt[j])
  end
  table.insert(hs, 'first'); table.insert(hs, tostring(first))
  redis.call('HSET', rkey, unpack(hs))
  redis.call('PEXPIRE', rkey, ringttl)

  local changed = n.g ~= startgen
  if changed then
    redis.call('HSET', skey, 'st', n.st, 'au', n.au, 'g', n.g, 'si', n.si, 'ta', n.ta,
      're', n.re, 'ac', n.ac, 'un', n.un, 'pu', n.pu)
    redis.call('SADD', KEYS[2], name)
  end
  if n.st == 'open' or n.st == 'forced_open' then
    table.insert(holding, n.g .. '\t' .. name)
  end
  local cw, cb, cr = lastwin, lastbase, lastready
  if tripwin then cw, cb, cr = tripwin, tripbase, tripready end
  for _, v in ipairs({name, n.st, n.au, n.g, n.si, n.ta, n.re, n.ac, n.un, n.pu,
      changed and '1' or '0', cw, cb, cr and '1' or '0'}) do
    table.insert(out, tostring(v))
  end
  argi = argi + 12 + nb * 2
end

-- record the batch's decisions per partition, for redeliveries
local payload = table.concat(holding, '\n')
for i = 1, P do
  local base = 4 + (i - 1) * 3
  redis.call('HSET', KEYS[2 + i], ARGV[base + 1], ARGV[base + 2] .. '|' .. payload)
  redis.call('PEXPIRE', KEYS[2 + i], rttl)
end
table.insert(out, 2, tostring(now))
return out
