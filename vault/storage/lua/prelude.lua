--- What every ticket script starts with (after access.lua): its gate, passed before anything
--- else; the names of the ARGV every ticket script shares (vault/storage/scripts.py); and the
--- helpers of the ticket's keys, its audit, its index and its helpdesk news.
--- The measurements the comments below quote are in bench/README.md, "Numbers behind code
--- comments" (they stay here too: a comment inside a script is part of the bytes Redis knows by
--- SHA1, tests/test_lua_scripts.py).

local NOW = tonumber(ARGV[3])
local GATED = pass_gate(ARGV[1], NOW, ARGV, #ARGV - 8)
local WHO, REFUSED = {}, nil
if GATED[1] == 'ok' then WHO = GATED[2] else REFUSED = GATED end
if WHO[1] then
  -- Act as the agent the gate authenticated (placeholders: vault.storage AGENT...). They stand
  -- only in ARGV[8..11] (the actor and the first three script arguments), never in what a
  -- caller typed (a request's note cannot turn into an e-mail).
  local bound = {['\0@agent'] = WHO[2], ['\0@name'] = WHO[3], ['\0@session'] = WHO[6]}
  for i = 8, math.min(11, #ARGV - 9) do
    if bound[ARGV[i]] then ARGV[i] = bound[ARGV[i]] end
  end
end
local P, TAG = ARGV[1], ARGV[2]
-- Numbers go to redis.call as the strings the caller sent wherever they pass unchanged: Redis
-- 7.0 turns a Lua number into a command argument with snprintf("%.17g"), some 3,000
-- instructions each, a tenth of a create's Redis time (bench/run --wsgi --redis-callgrind).
local NOWS, MINETTLS = ARGV[3], ARGV[#ARGV - 1]
local TMAX, GMAX, TLOGTTL, GKEY, ACTOR = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local MINE = ARGV[#ARGV - 2]
local function k(kind, name) return P .. '{' .. TAG .. '}:' .. kind .. ':' .. name end
-- Writes outside the ticket's slot that the caller replays after the script (Cluster only).
local LATER = {}
-- The assignee's index of their tickets, scored by last activity. Bounded three ways: entries
-- older than the longest life of a ticket record go, the newest (the index cap) stay, and the key
-- itself dies with its newest entry, so it never outlives what it indexes.
local function mine(agent, ticket)
  if not agent or agent == '' then return end
  if MINE == '' then
    table.insert(LATER, {'m', agent, ticket, NOW})
    return
  end
  local key = MINE .. agent
  -- Trimmed when a ticket joins it (the only time it grows); moving a listed ticket to the top
  -- neither adds an entry nor makes an old one readable (readers drop expired records).
  if redis.call('ZADD', key, NOWS, ticket) == 1 then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', NOW - tonumber(MINETTLS))
    redis.call('ZREMRANGEBYRANK', key, 0, -(tonumber(ARGV[#ARGV]) + 1))
  end
  redis.call('PEXPIRE', key, MINETTLS)
end
local function unmine(agent, ticket)
  if not agent or agent == '' then return end
  if MINE == '' then
    table.insert(LATER, {'u', agent, ticket})
    return
  end
  redis.call('ZREM', MINE .. agent, ticket)
end
local function assignee_of(ticket) return redis.call('HGET', k('t', ticket), 'assignee') or '' end
local function hash(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return nil end
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  return h
end
-- The field order is relied on by SIDEBAR (event 4th, id 8th): keep it.
-- (The entry's fields are written out, not built as a table and unpacked: that table was
-- measurable in a create's Redis time.)
local function entry(key, cap, event, ticket, id, detail)
  redis.call('XADD', key, 'MAXLEN', '~', cap, '*', 'ts', NOWS, 'event', event,
             'ticket', ticket, 'id', id, 'actor', ACTOR, 'detail', detail)
end
local function audit(ticket, event, id, detail)
  id, detail = id or '', detail or ''
  local log = k('log', ticket)
  entry(log, TMAX, event, ticket, id, detail)
  redis.call('PEXPIRE', log, TLOGTTL)
  if GKEY ~= '' then
    entry(GKEY, GMAX, event, ticket, id, detail)
  else
    table.insert(LATER, {'x', 'ts', NOWS, 'event', event, 'ticket', ticket, 'id', id,
                         'actor', ACTOR, 'detail', detail})
  end
end
-- Keep a key at least until `ms` from now (never shortens a longer life). One call when the
-- life grows, as it does on every write to a ticket (GT: only a later expiry is set); a key
-- with no expiry at all (just made by this script) is the one case GT leaves alone.
local function keep(key, ms)
  if redis.call('PEXPIRE', key, ms, 'GT') == 1 then return end
  if redis.call('PTTL', key) == -1 then redis.call('PEXPIRE', key, ms) end
end
-- A gone-marker is "<reason>:<ticket>": the reason for the customer's page, the ticket so
-- that a reveal can still check the assignee first (403 before 410).
local function gone(id)
  local v = redis.call('GET', k('g', id))
  if not v then return nil, nil end
  local at = string.find(v, ':', 1, true)
  if not at then return v, nil end
  return string.sub(v, 1, at - 1), string.sub(v, at + 1)
end
-- Digests are hex SHA-256 of high-entropy tokens; compare them without an early exit anyway.
local function same(a, b)
  if type(a) ~= 'string' or type(b) ~= 'string' or #a ~= #b then return false end
  -- Sum of differences, no early exit (plain arithmetic: the embedded store's Lua has no bit
  -- library).
  local diff = 0
  for i = 1, #a do diff = diff + math.abs(string.byte(a, i) - string.byte(b, i)) end
  return diff == 0
end
-- Store a new waiting secret. Caller has checked the ticket is open (and, for the share flow,
-- that its room is not full). `expires`, `env_ttl` and `meta_ttl` (ms) are the caller's strings
-- (see NOWS). `request` is the request it fills, '' for the share flow.
-- The waiting set `w` is the share flow's room: only submissions without a request take a place
-- in it. A fill answers what an agent asked for, so no stranger can take its place: each request
-- holds at most one waiting secret, and only an authenticated agent makes requests.
-- Members of a ticket's index and waiting set that have expired stand for nothing: readers
-- skip them (ZRANGEBYSCORE from now), the room check does not count them (ZCOUNT from now), and
-- each key dies with its newest member. So they are dropped on one new item in 16 (the new
-- id's first random character decides, uniformly), not on every one: two calls that were a
-- tenth of a create's work in Redis (bench/run --wsgi --redis-callgrind).
local function tidy(ix, w, id)
  if string.byte(id, 7) % 16 ~= 0 then return end
  redis.call('ZREMRANGEBYSCORE', ix, '-inf', NOWS)
  if w then redis.call('ZREMRANGEBYSCORE', w, '-inf', NOWS) end
end
local function add_secret(ticket, id, kind, env, expires, env_ttl, meta_ttl, manage, request)
  local skey, ix = k('s', id), k('ix', ticket)
  local w = request == '' and k('w', ticket) or nil
  redis.call('HSET', skey, 'ticket', ticket, 'kind', kind, 'state', 'waiting',
             'created_at', NOWS, 'expires_at', expires, 'manage', manage, 'request', request)
  redis.call('PEXPIRE', skey, meta_ttl)
  redis.call('SET', k('e', id), env, 'PX', env_ttl)
  if w then redis.call('ZADD', w, expires, id) end
  redis.call('ZADD', ix, NOW + tonumber(meta_ttl), 's:' .. id)
  tidy(ix, w, id)
  if w then keep(w, env_ttl) end
  keep(ix, meta_ttl)
  keep(k('t', ticket), meta_ttl)
end
-- The digests of the last signed bodies a ticket's helpdesk news came in (newest first, at most
-- 8, space-separated in its record's `hs_body`): a body among them is no news any more.
local function body_seen(t, body)
  local seen = redis.call('HGET', t, 'hs_body') or ''
  return string.find(' ' .. seen .. ' ', ' ' .. body .. ' ', 1, true) ~= nil, seen
end
-- News from the helpdesk about ticket record `t`: remember its conversation id and the digest
-- of the signed body it came in, and refuse (false) an update strictly older than the last one
-- applied, else record its time. `updated` is '' from a source without a clock, '-' from one
-- with a clock whose body carried no time: that cannot be shown newer than what was applied.
local function helpdesk_news(t, conv, updated, body)
  if body ~= '' then
    local known, seen = body_seen(t, body)
    if not known then
      local kept = {body}
      for digest in string.gmatch(seen, '%S+') do
        if #kept == 8 then break end
        kept[#kept + 1] = digest
      end
      redis.call('HSET', t, 'hs_body', table.concat(kept, ' '))
    end
  end
  if updated == '-' then
    if redis.call('HGET', t, 'hs_updated') then return false end
  elseif updated ~= '' then
    local last = tonumber(redis.call('HGET', t, 'hs_updated') or '0')
    if tonumber(updated) < last then return false end
    redis.call('HSET', t, 'hs_updated', updated)
  end
  if conv ~= '' then redis.call('HSET', t, 'hs_id', conv) end
  return true
end
-- (refusal or nil, the ticket's assignee or ''), from one read of the ticket record.
-- `max_waiting`: the share flow's room (see add_secret), nil for a request's fill.
local function ticket_open_and_room(ticket, max_waiting)
  local t = redis.call('HMGET', k('t', ticket), 'closed', 'assignee')
  if t[1] == '1' then return 'closed', '' end
  -- Share-flow secrets waiting, not yet expired (a member's score is its expiry).
  if max_waiting and redis.call('ZCOUNT', k('w', ticket), '(' .. NOWS, '+inf') >= max_waiting then
    return 'full', ''
  end
  return nil, t[2] or ''
end
