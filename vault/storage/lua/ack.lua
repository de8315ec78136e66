--- KEYS: secret hash, envelope. ARGV[9]: session. A secret already purged or deleted has no
--- envelope left to delete: its ticket's assignee gets 'ok', anyone else 'forbidden'.

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
