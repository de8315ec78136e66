--- Delete a waiting secret unread, for DELETE_SECRET and DISCARD_SECRET (KEYS: its hash and
--- envelope): both go, a gone-marker says why (`reason`) for `ms`, its places in the ticket's sets
--- go, and the request it filled is open again (the customer can send through the same link).

local function drop(id, s, reason, ms)
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SET', k('g', id), reason .. ':' .. s.ticket, 'PX', tonumber(ms))
  redis.call('ZREM', k('w', s.ticket), id)
  redis.call('ZREM', k('ix', s.ticket), 's:' .. id)
  if s.request ~= '' then
    redis.call('HSET', k('r', s.request), 'state', 'open')
    redis.call('HDEL', k('r', s.request), 'secret_id', 'env_digest')
  end
end
