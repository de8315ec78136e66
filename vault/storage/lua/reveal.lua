--- KEYS: secret hash, envelope. ARGV[9..]: agent e-mail, agent display name, session, grace ms,
--- unassigned policy.

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
