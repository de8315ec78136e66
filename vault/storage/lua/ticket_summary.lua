--- Read-only, for the dashboard: ticket record and its items, no events. ARGV[9]: ticket.

local ticket = ARGV[9]
return {redis.call('HGETALL', k('t', ticket)), items_of(ticket)}
