"""The Lua scripts of the store. Only `vault.storage.Store` runs them.

Conventions shared by every ticket script (see `Store._ticket_args`):
ARGV[1] key prefix, ARGV[2] slot tag, ARGV[3] now (ms, the app's clock so tests can move time),
ARGV[4] ticket-stream cap, ARGV[5] global-stream cap, ARGV[6] ticket-stream lifetime (ms),
ARGV[7] global stream key ('' on a Cluster, where Python writes it after the script),
ARGV[8] actor; script-specific arguments follow from ARGV[9]. The last three ARGV are always
the agents' ticket index ("my tickets"): its key prefix ('' on a Cluster, where Python writes it
after the script, like the global stream), its lifetime (ms) and its cap (entries per agent).

Keys of the ticket that are not in KEYS are built from the prefix and the tag, so they hash to
the same slot as the declared ones: the script stays single-slot on a Redis Cluster.
Times stored in hashes are milliseconds since the epoch.

On a Cluster (global stream key and index prefix both ''), the writes a script would make
outside its slot are not made: they are handed back, in order, and the store replays them after
the script. A writing ticket script then answers `{later, result}` instead of `result`, where
`later` lists `{'x', field, value, ...}` (an entry for the global stream),
`{'m', agent, ticket, now}` (the agent's index: ticket active at now) and
`{'u', agent, ticket}` (the ticket is no longer theirs).
So the global stream and the index get exactly what they get on a single Redis.

The gate (PRODUCT.md "Storage": a create, a fill and a reveal are one round trip in all): the six
ARGV before the index's three are the caller's credential and rate limits, checked before
anything else: the token or session key ('' for none), its kind ('token' or 'session'), the
session's idle and absolute lifetimes (ms), the identity the limits count ('' for the
authenticated agent's e-mail) and the limits (`over_limit`'s spec, '' for none). A refused gate
answers {'unauthenticated'}, {'notagent'} or {'limited', seconds}; the domain step does not run.
An accepted credential replaces the placeholders AGENT, AGENT_NAME and AGENT_SESSION (vault.
storage) where they may stand, ARGV[8..11], so the script acts as the agent it authenticated. On a
Cluster the store passes the gate in the account slot first (GATE) and the ticket script gets
an empty gate and the agent's values themselves: two round trips.

A writing ticket script answers one flat array: the number of fields of `who`, those fields,
`later`, then the fields of its result. `who` is the authenticated row ({'agent', e-mail, name,
role, id, session}, or nothing), `later` the writes to replay (a nested array on a Cluster, ''
elsewhere). Flat because Redis converts each array of a script's answer with a few field
look-ups of its own: three nested arrays cost more than a PEXPIRE.
"""

from __future__ import annotations

# Authentication and rate limits: used by the gate of every ticket script, by AUTHENTICATE and
# by GATE, so the three never disagree.
ACCESS = r"""
-- A token's or session's record -> {'agent', e-mail, name, role, id, session},
-- {'apikey', name, id}, or nil. Every token and session carries its agent's revocation epoch:
-- a disabled or removed agent, or a changed epoch, ends it here (and its key goes).
local function authenticate(prefix, key, kind, now, idle, max)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return nil end
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  if h.type == 'apikey' then return {'apikey', h.owner, h.id} end
  local a = redis.call('HMGET', prefix .. '{acct}:agent:' .. h.owner, 'email', 'name', 'role',
                       'epoch', 'disabled')
  if not a[1] or a[5] == '1' or a[4] ~= h.epoch then
    redis.call('DEL', key)
    return nil
  end
  local session = 't:' .. h.id
  if kind == 'session' then
    if now - tonumber(h.created_at) >= max or now - tonumber(h.seen_at) >= idle then
      redis.call('DEL', key)
      return nil
    end
    redis.call('HSET', key, 'seen_at', now)
    redis.call('PEXPIRE', key, math.min(idle, tonumber(h.created_at) + max - now))
    session = 's:' .. h.id
  end
  local name = a[2]
  if not name or name == '' then name = a[1] end
  return {'agent', a[1], name, a[3] or 'agent', h.id, session}
end
-- Fixed windows, counted as flask-limiter's `limits` library counts them in Redis (its
-- incr_expire script): every hit counts, the first one starts the window, a count over the
-- amount is refused. `spec`: one "amount seconds head tail" per limit (vault.ratelimit); the
-- counter is prefix .. head .. identity .. tail. Answers the seconds until the refusing window
-- ends (rounded up, at least 1), or nil when every limit let the hit through.
local function over_limit(prefix, spec, identity)
  for amount, seconds, head, tail in string.gmatch(spec, '(%d+) (%d+) (%S+) (%S+)') do
    local key = prefix .. '{acct}:LIMITS:' .. head .. identity .. tail
    local n = redis.call('INCRBY', key, '1')  -- INCRBY: the ACL of deploy/redis allows it
    if n == 1 then redis.call('EXPIRE', key, seconds) end
    if n > tonumber(amount) then
      local left = redis.call('PTTL', key)
      if left < 1000 then return 1 end
      return math.ceil(left / 1000)
    end
  end
  return nil
end
-- The gate: {'ok', who or {}} or a refusal ({'unauthenticated'}, {'notagent'},
-- {'limited', seconds}). `args` from `first`: key, kind, idle, max, identity, spec.
local function pass_gate(prefix, now, args, first)
  local key, identity, spec = args[first], args[first + 4], args[first + 5]
  local who = {}
  if key ~= '' then
    who = authenticate(prefix, key, args[first + 1], now, tonumber(args[first + 2]),
                       tonumber(args[first + 3]))
    if not who then return {'unauthenticated'} end
    if who[1] ~= 'agent' then return {'notagent'} end
    if identity == '' then identity = who[2] end
  end
  if spec ~= '' then
    local left = over_limit(prefix, spec, identity)
    if left then return {'limited', left} end
  end
  return {'ok', who}
end
"""

PRELUDE = ACCESS + r"""
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
"""


def _writing(body: str) -> str:
    """A writing ticket script: the body runs as a function, so that on a Cluster its answer
    can travel with the writes to replay (see the module's docstring)."""
    return (PRELUDE + "local function main()\n" + body + "\nend\n"
            + "local out = REFUSED or main()\n"
            + "local reply = {#WHO}\n"
            + "for i = 1, #WHO do reply[i + 1] = WHO[i] end\n"
            + "if #LATER > 0 then reply[#reply + 1] = LATER else reply[#reply + 1] = '' end\n"
            + "for i = 1, #out do reply[#reply + 1] = out[i] end\n"
            + "return reply\n")


# KEYS: none beyond the ticket's (built). ARGV[9..]: ticket, id, kind, env, expires, env_ttl,
# meta_ttl, manage digest, max waiting.
CREATE_SECRET = _writing(r"""
local ticket, id, kind, env = ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local expires, env_ttl, meta_ttl = ARGV[13], ARGV[14], ARGV[15]
local refused, assignee = ticket_open_and_room(ticket, tonumber(ARGV[17]))
if refused then return {refused} end
add_secret(ticket, id, kind, env, expires, env_ttl, meta_ttl, ARGV[16], '')
audit(ticket, 'secret.submitted', id, kind)
mine(assignee, ticket)
return {'ok', assignee}
""")

# ARGV[9..]: ticket, id, expires, meta_ttl, note, tombstone ttl
CREATE_REQUEST = _writing(r"""
local ticket, id, expires, meta_ttl, note = ARGV[9], ARGV[10], ARGV[11], tonumber(ARGV[12]),
  ARGV[13]
local t = k('t', ticket)
if redis.call('HGET', t, 'closed') == '1' then return {'closed'} end
local assignee = redis.call('HGET', t, 'assignee')
if not assignee or assignee == '' then
  redis.call('HSET', t, 'assignee', ACTOR)
  audit(ticket, 'ticket.assigned', '', 'by request')
  assignee = ACTOR
end
local rkey = k('r', id)
redis.call('HSET', rkey, 'ticket', ticket, 'state', 'open', 'created_at', NOWS,
           'expires_at', expires, 'created_by', ACTOR, 'note', note)
redis.call('PEXPIRE', rkey, ARGV[12])
local ix = k('ix', ticket)
redis.call('ZADD', ix, NOW + meta_ttl, 'r:' .. id)
tidy(ix, nil, id)
keep(ix, ARGV[12])
keep(t, math.max(meta_ttl, tonumber(ARGV[14])))
audit(ticket, 'request.created', id, '')
mine(assignee, ticket)
return {'ok', assignee}
""")

# KEYS: request hash. ARGV[9..]: secret id, kind, env, expires, env_ttl, meta_ttl, manage digest,
# envelope digest. A fill takes no place in the share flow's room (add_secret).
FILL_REQUEST = _writing(r"""
local r = hash(KEYS[1])
local rid = string.sub(KEYS[1], -28)
if not r then
  local reason = gone(rid)
  if reason then return {'gone', reason} end
  return {'notfound'}
end
local ticket = r.ticket
if NOW >= tonumber(r.expires_at) then return {'gone', 'expired'} end
if r.state ~= 'open' then
  if r.env_digest == ARGV[16] and r.secret_id and r.state == 'submitted' then
    -- The first answer was lost, so its manage token was never seen: the retry gets a new one.
    redis.call('HSET', k('s', r.secret_id), 'manage', ARGV[15])
    return {'again', r.secret_id, redis.call('HGET', k('s', r.secret_id), 'expires_at') or '',
            ticket}
  end
  return {'conflict', r.state}
end
local refused, assignee = ticket_open_and_room(ticket, nil)
if refused then return {refused} end
local sid, expires = ARGV[9], ARGV[12]
add_secret(ticket, sid, ARGV[10], ARGV[11], expires, ARGV[13], ARGV[14], ARGV[15], rid)
redis.call('HSET', KEYS[1], 'state', 'submitted', 'secret_id', sid, 'env_digest', ARGV[16])
audit(ticket, 'secret.submitted', sid, ARGV[10] .. ' for request ' .. rid)
mine(assignee, ticket)
return {'ok', sid, expires, ticket, assignee}
""")

# KEYS: secret hash, envelope. ARGV[9..]: agent e-mail, agent display name, session, grace ms,
# unassigned policy.
REVEAL = _writing(r"""
local id = string.sub(KEYS[1], -28)
local s = hash(KEYS[1])
local agent, name, session = ARGV[9], ARGV[10], ARGV[11]
if not s then
  local reason, owner = gone(id)
  if not reason then return {'notfound'} end
  if owner then
    -- 403 before 410: only who could have revealed it learns that it is gone.
    local assigned = redis.call('HGET', k('t', owner), 'assignee') or ''
    if (assigned == '' and ARGV[13] ~= 'claim') or (assigned ~= '' and assigned ~= agent) then
      audit(owner, 'reveal.refused', id, 'not the assignee')
      return {'forbidden', 'not-assignee'}
    end
    audit(owner, 'reveal.refused', id, reason)
  end
  return {'gone', reason}
end
local ticket = s.ticket
local t = k('t', ticket)
local expired = NOW >= tonumber(s.expires_at)
local assignee = redis.call('HGET', t, 'assignee')
if (not assignee or assignee == '') and expired and ARGV[13] == 'claim' then
  return {'gone', 'expired'}  -- nothing to claim: an expired secret assigns nobody
end
if not assignee or assignee == '' then
  if ARGV[13] ~= 'claim' then
    audit(ticket, 'reveal.refused', id, 'unassigned')
    return {'forbidden', 'unassigned'}
  end
  redis.call('HSET', t, 'assignee', agent)
  keep(t, redis.call('PTTL', KEYS[1]))  -- a claim never makes an immortal ticket record
  audit(ticket, 'ticket.assigned', '', 'claimed by reveal')
  mine(agent, ticket)
elseif assignee ~= agent then
  audit(ticket, 'reveal.refused', id, 'not the assignee')
  return {'forbidden', 'not-assignee'}
end
if s.state == 'waiting' then
  local env = redis.call('GET', KEYS[2])
  if expired or not env then
    redis.call('DEL', KEYS[2])
    return {'gone', 'expired'}
  end
  local grace = tonumber(ARGV[12])
  redis.call('HSET', KEYS[1], 'state', 'revealed', 'revealed_at', NOWS, 'revealed_by', name,
             'revealed_by_email', agent, 'session', session, 'grace_until', NOW + grace)
  if grace > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[12]) else redis.call('DEL', KEYS[2]) end
  redis.call('ZREM', k('w', ticket), id)
  if s.request ~= '' then redis.call('HSET', k('r', s.request), 'state', 'revealed') end
  audit(ticket, 'secret.revealed', id, s.kind)
  mine(agent, ticket)
  return {'ok', env, s.kind, ticket}
end
if expired then return {'gone', 'expired'} end
if s.session == session and NOW < tonumber(s.grace_until or '0') then
  local env = redis.call('GET', KEYS[2])
  if env then
    audit(ticket, 'secret.refetched', id, 'grace window')
    return {'ok', env, s.kind, ticket, 'again'}
  end
end
audit(ticket, 'reveal.refused', id, 'already revealed')
return {'gone', 'revealed', s.revealed_by or '', s.revealed_at or ''}
""")

# KEYS: secret hash, envelope. ARGV[9]: session. A secret already purged or deleted has no
# envelope left to delete: its ticket's assignee gets 'ok', anyone else 'forbidden'.
ACK = _writing(r"""
local id = string.sub(KEYS[1], -28)
local s = hash(KEYS[1])
if not s then
  local reason, owner = gone(id)
  if not reason then return {'notfound'} end
  if owner and redis.call('HGET', k('t', owner), 'assignee') == ACTOR then return {'ok'} end
  return {'forbidden'}
end
if s.state ~= 'revealed' or s.session ~= ARGV[9] then return {'forbidden'} end
if redis.call('DEL', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[1], 'grace_until', '0')
  audit(s.ticket, 'secret.acknowledged', id, '')
end
return {'ok'}
""")

# Delete a waiting secret unread, for DELETE_SECRET and DISCARD_SECRET (KEYS: its hash and
# envelope): both go, a gone-marker says why (`reason`) for `ms`, its places in the ticket's sets
# go, and the request it filled is open again (the customer can send through the same link).
DROP = r"""
local function drop(id, s, reason, ms)
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SET', k('g', id), reason .. ':' .. s.ticket, 'PX', tonumber(ms))
  redis.call('ZREM', k('w', s.ticket), id)
  redis.call('ZREM', k('ix', s.ticket), 's:' .. id)
  if s.request ~= '' then
    redis.call('HSET', k('r', s.request), 'state', 'open')
    redis.call('HDEL', k('r', s.request), 'secret_id', 'env_digest')
  end
end
"""

# The customer's delete. KEYS: secret hash, envelope. ARGV[9..]: manage digest, gone-marker
# lifetime (ms).
DELETE_SECRET = _writing(DROP + r"""
local id = string.sub(KEYS[1], -28)
local s = hash(KEYS[1])
if not s then
  local reason = gone(id)
  if reason then return {'gone', reason} end
  return {'notfound'}
end
if not same(s.manage, ARGV[9]) then return {'forbidden'} end
if s.state ~= 'waiting' then return {'gone', 'revealed', s.revealed_by or '', s.revealed_at or ''} end
if NOW >= tonumber(s.expires_at) then return {'gone', 'expired'} end
drop(id, s, 'deleted', ARGV[10])
audit(s.ticket, 'secret.deleted', id, 'by the customer')
return {'ok'}
""")

# The assignee's (or an admin's) discard of a waiting secret, unread, without the manage token:
# junk in the share flow's room goes without purging the ticket. The actor (ARGV[8]) is the
# agent. KEYS: secret hash, envelope. ARGV[9..]: '1' if the agent is an admin, gone-marker
# lifetime (ms), the ticket the secret must be of ('' for any: a secret of another ticket is
# then 'notfound'). Nobody else may (403 before 410, as for a reveal; the refusal is audited);
# a ticket without an assignee, only an admin. Answers {'ok', ticket}.
DISCARD_SECRET = _writing(DROP + r"""
local id = string.sub(KEYS[1], -28)
local admin, only = ARGV[9] == '1', ARGV[11]
-- How the agent may discard `ticket`'s secrets ('the assignee', 'an admin'), or nil.
local function as(ticket)
  if ACTOR ~= '' and assignee_of(ticket) == ACTOR then return 'the assignee' end
  if admin then return 'an admin' end
  return nil
end
local s = hash(KEYS[1])
local ticket
if s then ticket = s.ticket else
  local reason, owner = gone(id)
  if not reason then return {'notfound'} end
  if not owner then return {'gone', reason} end
  if only ~= '' and owner ~= only then return {'notfound'} end
  if not as(owner) then
    audit(owner, 'discard.refused', id, 'not the assignee')
    return {'forbidden'}
  end
  return {'gone', reason}
end
if only ~= '' and ticket ~= only then return {'notfound'} end
local by = as(ticket)
if not by then
  audit(ticket, 'discard.refused', id, 'not the assignee')
  return {'forbidden'}
end
if s.state ~= 'waiting' then return {'gone', 'revealed', s.revealed_by or '', s.revealed_at or ''} end
if NOW >= tonumber(s.expires_at) then return {'gone', 'expired'} end
drop(id, s, 'discarded', ARGV[10])
audit(ticket, 'secret.discarded', id, s.kind .. ' by ' .. by)
return {'ok', ticket}
""")

# ARGV[9..]: ticket, reason (closed, deleted, merged, spam), tombstone ttl ms, helpdesk
# conversation id ('' if none), helpdesk "updated at" ms ('' if none, '-' if the body had none),
# digest of the helpdesk's signed body ('' if none), '1' when the purge is only as good as its
# body (a merge, which the unsigned event name alone asserts). A close is always applied, and it
# moves the ticket's helpdesk clock forward so that an older reopening cannot undo it; such a
# merge is refused as stale when its body is older than the last one applied, or is one of the
# last bodies delivered (as another event), and does nothing to a ticket without a record.
PURGE = _writing(r"""
local ticket, reason, tomb = ARGV[9], ARGV[10], tonumber(ARGV[11])
local t = k('t', ticket)
if ARGV[15] == '1' then
  -- Of a ticket vault holds nothing of (no record, no item), such a merge purges nothing and
  -- leaves no tombstone (an old capture must not close a ticket vault forgot); a body already
  -- delivered as news of the ticket is stale.
  if redis.call('EXISTS', t, k('ix', ticket)) == 0 then return {'ok', '0', ''} end
  if ARGV[14] ~= '' and body_seen(t, ARGV[14]) then return {'stale'} end
end
if not helpdesk_news(t, ARGV[12], ARGV[13], ARGV[14]) and ARGV[15] == '1' then
  return {'stale'}
end
local ix = k('ix', ticket)
local count = 0
for _, member in ipairs(redis.call('ZRANGE', ix, 0, -1)) do
  local kind, id = string.sub(member, 1, 1), string.sub(member, 3)
  if kind == 's' then
    local s = hash(k('s', id))
    -- Counted: secrets still alive (waiting or revealed, not past their expiry).
    if s and NOW < tonumber(s.expires_at) then count = count + 1 end
    redis.call('DEL', k('s', id), k('e', id))
  else
    local r = hash(k('r', id))
    if r and r.state == 'open' and NOW < tonumber(r.expires_at) then count = count + 1 end
    redis.call('DEL', k('r', id))
  end
  redis.call('SET', k('g', id), 'purged:' .. ticket, 'PX', tomb)
end
redis.call('DEL', ix, k('w', ticket))
local already = redis.call('HGET', t, 'closed') == '1'
if not already then
  redis.call('HSET', t, 'closed', '1', 'closed_at', NOW, 'close_reason', reason)
end
redis.call('HINCRBY', t, 'purged', count)
redis.call('PEXPIRE', t, tomb)
audit(ticket, 'ticket.purged', '', reason .. ': ' .. count)
local assignee = assignee_of(ticket)
mine(assignee, ticket)
return {'ok', tostring(count), assignee}
""")

# ARGV[9..]: ticket, assignee e-mail ('' clears), tombstone ttl ms, helpdesk conversation id,
# helpdesk "updated at" and body digest (as PURGE).
ASSIGN = _writing(r"""
local ticket, agent, tomb, conv, updated = ARGV[9], ARGV[10], tonumber(ARGV[11]), ARGV[12], ARGV[13]
local t = k('t', ticket)
if not helpdesk_news(t, conv, updated, ARGV[14]) then return {'stale'} end
local before = redis.call('HGET', t, 'assignee') or ''
redis.call('HSET', t, 'assignee', agent)
keep(t, tomb)
if before ~= agent then
  audit(ticket, 'ticket.assigned', '', agent)
  unmine(before, ticket)
end
mine(agent, ticket)
return {'ok', before}
""")

# Accept submissions again. ARGV as ASSIGN (the assignee slot unused): a helpdesk's older news
# than what was applied is refused, so a replayed reopening cannot undo a later close.
REOPEN = _writing(r"""
local ticket, tomb, conv, updated = ARGV[9], tonumber(ARGV[11]), ARGV[12], ARGV[13]
local t = k('t', ticket)
if not helpdesk_news(t, conv, updated, ARGV[14]) then return {'stale'} end
keep(t, tomb)
if redis.call('HGET', t, 'closed') ~= '1' then return {'ok', '0'} end
redis.call('HDEL', t, 'closed', 'closed_at', 'close_reason')
audit(ticket, 'ticket.reopened', '', '')
local assignee = assignee_of(ticket)
mine(assignee, ticket)
return {'ok', '1', assignee}
""")

# The live items of a ticket: {kind ('r' or 's'), id, envelope present (0/1), hash} each.
ITEMS = r"""
local function items_of(ticket)
  local items = {}
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', k('ix', ticket), NOW, '+inf')) do
    local kind, id = string.sub(member, 1, 1), string.sub(member, 3)
    local h = redis.call('HGETALL', k(kind, id))
    if #h > 0 then
      local live = 0
      if kind == 's' then live = redis.call('EXISTS', k('e', id)) end
      table.insert(items, {kind, id, live, h})
    end
  end
  return items
end
"""

# Read-only: ticket record, its items and its last audit events. ARGV[9..]: ticket, events.
TICKET_VIEW = PRELUDE + ITEMS + r"""
local ticket = ARGV[9]
local t = redis.call('HGETALL', k('t', ticket))
local events = redis.call('XREVRANGE', k('log', ticket), '+', '-', 'COUNT', tonumber(ARGV[10]))
return {t, items_of(ticket), events}
"""

# Read-only, for the dashboard: ticket record and its items, no events. ARGV[9]: ticket.
TICKET_SUMMARY = PRELUDE + ITEMS + r"""
local ticket = ARGV[9]
return {redis.call('HGETALL', k('t', ticket)), items_of(ticket)}
"""

# For Help Scout's sidebar: the ticket's record, one row per item as the sidebar shows it, and the
# customer deletions since the ticket was last purged. A row is {what, state, ms, created ms,
# who, who's e-mail}: `what` is 'request' or the secret's kind; a request shows only while nobody
# filled it (state open or expired; once filled, its secret's row tells the rest); a secret is
# waiting, revealed or expired; `ms` is the time the sidebar shows (since, revealed at, expired
# at) and `who` the revealer (the name at the time of the reveal; the e-mail finds today's).
# Deletions come from the ticket's audit stream, newest first, at most ARGV[10] of them
# ({id, ms}), with the count of the others. Cut down to that so that a ticket of
# 100 secrets answers in one small reply.
# Its only write is the call's rate limit, counted per ticket in the ticket's slot before any
# reading (Help Scout signs without a timestamp: a captured call can be replayed, and this caps
# what one replayed body costs): ARGV[11] windows, then (amount, seconds) for each. Over a limit
# it answers {'limited', ms until the window ends} and reads nothing. ARGV[9]: ticket.
SIDEBAR = PRELUDE + r"""
local ticket, SHOWN = ARGV[9], tonumber(ARGV[10])
for i = 1, tonumber(ARGV[11]) do
  local amount, seconds = tonumber(ARGV[10 + 2 * i]), tonumber(ARGV[11 + 2 * i])
  local window = math.floor(NOW / 1000 / seconds)
  local key = k('rl', 'sidebar:' .. seconds .. ':' .. window .. ':' .. ticket)
  local count = redis.call('INCRBY', key, 1)  -- INCRBY: the ACL of deploy/redis allows it
  if count == 1 then redis.call('PEXPIRE', key, seconds * 1000) end
  if count > amount then return {'limited', tostring((window + 1) * seconds * 1000 - NOW)} end
end
local rows = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', k('ix', ticket), NOW, '+inf')) do
  local kind, id = string.sub(member, 1, 1), string.sub(member, 3)
  if kind == 'r' then
    local r = redis.call('HMGET', k('r', id), 'state', 'created_at', 'expires_at')
    if r[1] == 'open' then
      if NOW >= tonumber(r[3] or '0') then
        table.insert(rows, {'request', 'expired', r[3] or '', r[2] or '', '', ''})
      else
        table.insert(rows, {'request', 'open', r[2] or '', r[2] or '', '', ''})
      end
    end
  else
    local s = redis.call('HMGET', k('s', id), 'state', 'kind', 'created_at', 'expires_at',
                         'revealed_at', 'revealed_by', 'revealed_by_email')
    if s[1] == 'revealed' then
      table.insert(rows, {s[2] or '', 'revealed', s[5] or '', s[3] or '', s[6] or '', s[7] or ''})
    elseif s[1] then
      if NOW >= tonumber(s[4] or '0') or redis.call('EXISTS', k('e', id)) == 0 then
        table.insert(rows, {s[2] or '', 'expired', s[4] or '', s[3] or '', '', ''})
      else
        table.insert(rows, {s[2] or '', 'waiting', s[3] or '', s[3] or '', '', ''})
      end
    end
  end
end
local deleted, more = {}, 0
local log = redis.call('XREVRANGE', k('log', ticket), '+', '-', 'COUNT', tonumber(TMAX))
-- An entry is {stream id, {'ts', ms, 'event', name, 'ticket', t, 'id', id, ...}}: the field
-- order of audit() above, which these positions rely on.
for _, entry in ipairs(log) do
  local f = entry[2]
  -- Deletions before the last purge belong to the ticket's earlier life.
  if f[4] == 'ticket.purged' then break end
  if f[4] == 'secret.deleted' then
    if #deleted < SHOWN then table.insert(deleted, {f[8], f[2]}) else more = more + 1 end
  end
end
return {redis.call('HGETALL', k('t', ticket)), rows, deleted, more}
"""

# Compare-and-set used by key rotation: never resurrects a revealed or deleted envelope.
# KEYS: envelope. ARGV: expected, replacement.
SWAP_IF_SAME = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return {1}
"""

# The same for a hash field (an agent's wrapped TOTP secret). KEYS: hash. ARGV: field,
# expected, replacement.
SWAP_FIELD_IF_SAME = r"""
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return {0} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return {1}
"""

# Accounts (all under the {acct} hash tag). KEYS: token or session key. ARGV: prefix, now ms,
# kind ('token' or 'session'), idle ms, max ms.
AUTHENTICATE = ACCESS + r"""
return authenticate(ARGV[1], KEYS[1], ARGV[3], tonumber(ARGV[2]), tonumber(ARGV[4]),
                    tonumber(ARGV[5]))
"""

# The gate alone, in the account slot: a Cluster's first round trip of a gated step, and the
# rate limits of routes that have no script of their own (logins, webhooks). KEYS: a key of the
# account slot (routing only). ARGV: prefix, now ms, then the gate's six (see the docstring).
GATE = ACCESS + r"""
return pass_gate(ARGV[1], tonumber(ARGV[2]), ARGV, 3)
"""

# A few plain writes as one atomic step, so that they go through the same path as every script
# (one round trip, and WAIT on the same connection with VAULT_REDIS_MIN_REPLICAS).
# KEYS: every key written (one slot). ARGV: for each command, its word count, then its words.
BATCH = r"""
local out, i = {}, 1
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  out[#out + 1] = redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return out
"""

# Create an agent in one step: the e-mail set and the record never disagree.
# KEYS: agents set, agent hash. ARGV: e-mail, Help Scout mapping key or '', field/value pairs.
ADD_AGENT = r"""
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return {0} end
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
if ARGV[2] ~= '' then redis.call('SET', ARGV[2], ARGV[1]) end
return {1}
"""
