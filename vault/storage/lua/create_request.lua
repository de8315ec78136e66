--- ARGV[9..]: ticket, id, expires, meta_ttl, note, tombstone ttl

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
