--- The customer's delete. KEYS: secret hash, envelope. ARGV[9..]: manage digest, gone-marker
--- lifetime (ms).

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
