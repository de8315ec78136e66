--- Read-only: ticket record, its items and its last audit events. ARGV[9..]: ticket, events.

local ticket = ARGV[9]
local t = redis.call('HGETALL', k('t', ticket))
local events = redis.call('XREVRANGE', k('log', ticket), '+', '-', 'COUNT', tonumber(ARGV[10]))
return {t, items_of(ticket), events}
