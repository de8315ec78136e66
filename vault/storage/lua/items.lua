--- The live items of a ticket: {kind ('r' or 's'), id, envelope present (0/1), hash} each.

local function items_of(ticket)
  local items = {}
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', k('ix', ticket), NOW, '+inf')) do
    local kind, id = string.sub(member, 1, 1), string.sub(member, 3)
    local h = redis.call('HGETALL', k(kind, id))
    if #h > 0 then
      local live = 0
      if kind == 's' then live = redis.call('EXISTS', k('e', id)) end
      table.insert(items, {kind, id, live, h})
    end
  end
  return items
end
