--- ARGV[9..]: ticket, assignee e-mail ('' clears), tombstone ttl ms, helpdesk conversation id,
--- helpdesk "updated at" and body digest (as PURGE).

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
