--- ARGV[9..]: ticket, reason (closed, deleted, merged, spam), tombstone ttl ms, helpdesk
--- conversation id ('' if none), helpdesk "updated at" ms ('' if none, '-' if the body had none),
--- digest of the helpdesk's signed body ('' if none), '1' when the purge is only as good as its
--- body (a merge, which the unsigned event name alone asserts). A close is always applied, and it
--- moves the ticket's helpdesk clock forward so that an older reopening cannot undo it; such a
--- merge is refused as stale when its body is older than the last one applied, or is one of the
--- last bodies delivered (as another event), and does nothing to a ticket without a record.

local ticket, reason, tomb = ARGV[9], ARGV[10], tonumber(ARGV[11])
local t = k('t', ticket)
if ARGV[15] == '1' then
  -- Of a ticket vault holds nothing of (no record, no item), such a merge purges nothing and
  -- leaves no tombstone (an old capture must not close a ticket vault forgot); a body already
  -- delivered as news of the ticket is stale.
  if redis.call('EXISTS', t, k('ix', ticket)) == 0 then return {'ok', '0', ''} end
  if ARGV[14] ~= '' and body_seen(t, ARGV[14]) then return {'stale'} end
end
if not helpdesk_news(t, ARGV[12], ARGV[13], ARGV[14]) and ARGV[15] == '1' then
  return {'stale'}
end
local ix = k('ix', ticket)
local count = 0
for _, member in ipairs(redis.call('ZRANGE', ix, 0, -1)) do
  local kind, id = string.sub(member, 1, 1), string.sub(member, 3)
  if kind == 's' then
    local s = hash(k('s', id))
    -- Counted: secrets still alive (waiting or revealed, not past their expiry).
    if s and NOW < tonumber(s.expires_at) then count = count + 1 end
    redis.call('DEL', k('s', id), k('e', id))
  else
    local r = hash(k('r', id))
    if r and r.state == 'open' and NOW < tonumber(r.expires_at) then count = count + 1 end
    redis.call('DEL', k('r', id))
  end
  redis.call('SET', k('g', id), 'purged:' .. ticket, 'PX', tomb)
end
redis.call('DEL', ix, k('w', ticket))
local already = redis.call('HGET', t, 'closed') == '1'
if not already then
  redis.call('HSET', t, 'closed', '1', 'closed_at', NOW, 'close_reason', reason)
end
redis.call('HINCRBY', t, 'purged', count)
redis.call('PEXPIRE', t, tomb)
audit(ticket, 'ticket.purged', '', reason .. ': ' .. count)
local assignee = assignee_of(ticket)
mine(assignee, ticket)
return {'ok', tostring(count), assignee}
