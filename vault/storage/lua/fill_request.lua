--- KEYS: request hash. ARGV[9..]: secret id, kind, env, expires, env_ttl, meta_ttl, manage digest,
--- envelope digest. A fill takes no place in the share flow's room (add_secret).

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
