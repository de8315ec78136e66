--- KEYS: none beyond the ticket's (built). ARGV[9..]: ticket, id, kind, env, expires, env_ttl,
--- meta_ttl, manage digest, max waiting.

local ticket, id, kind, env = ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local expires, env_ttl, meta_ttl = ARGV[13], ARGV[14], ARGV[15]
local refused, assignee = ticket_open_and_room(ticket, tonumber(ARGV[17]))
if refused then return {refused} end
add_secret(ticket, id, kind, env, expires, env_ttl, meta_ttl, ARGV[16], '')
audit(ticket, 'secret.submitted', id, kind)
mine(assignee, ticket)
return {'ok', assignee}
