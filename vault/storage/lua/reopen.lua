--- Accept submissions again. ARGV as ASSIGN (the assignee slot unused): a helpdesk's older news
--- than what was applied is refused, so a replayed reopening cannot undo a later close.

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
