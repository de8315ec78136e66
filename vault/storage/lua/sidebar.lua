--- For Help Scout's sidebar: the ticket's record, one row per item as the sidebar shows it, and the
--- customer deletions since the ticket was last purged. A row is {what, state, ms, created ms,
--- who, who's e-mail}: `what` is 'request' or the secret's kind; a request shows only while nobody
--- filled it (state open or expired; once filled, its secret's row tells the rest); a secret is
--- waiting, revealed or expired; `ms` is the time the sidebar shows (since, revealed at, expired
--- at) and `who` the revealer (the name at the time of the reveal; the e-mail finds today's).
--- Deletions come from the ticket's audit stream, newest first, at most ARGV[10] of them
--- ({id, ms}), with the count of the others. Cut down to that so that a ticket of
--- 100 secrets answers in one small reply.
--- Its only write is the call's rate limit, counted per ticket in the ticket's slot before any
--- reading (Help Scout signs without a timestamp: a captured call can be replayed, and this caps
--- what one replayed body costs): ARGV[11] windows, then (amount, seconds) for each. Over a limit
--- it answers {'limited', ms until the window ends} and reads nothing. ARGV[9]: ticket.

local ticket, SHOWN = ARGV[9], tonumber(ARGV[10])
for i = 1, tonumber(ARGV[11]) do
  local amount, seconds = tonumber(ARGV[10 + 2 * i]), tonumber(ARGV[11 + 2 * i])
  local window = math.floor(NOW / 1000 / seconds)
  local key = k('rl', 'sidebar:' .. seconds .. ':' .. window .. ':' .. ticket)
  local count = redis.call('INCRBY', key, 1)  -- INCRBY: the ACL of deploy/redis allows it
  if count == 1 then redis.call('PEXPIRE', key, seconds * 1000) end
  if count > amount then return {'limited', tostring((window + 1) * seconds * 1000 - NOW)} end
end
local rows = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', k('ix', ticket), NOW, '+inf')) do
  local kind, id = string.sub(member, 1, 1), string.sub(member, 3)
  if kind == 'r' then
    local r = redis.call('HMGET', k('r', id), 'state', 'created_at', 'expires_at')
    if r[1] == 'open' then
      if NOW >= tonumber(r[3] or '0') then
        table.insert(rows, {'request', 'expired', r[3] or '', r[2] or '', '', ''})
      else
        table.insert(rows, {'request', 'open', r[2] or '', r[2] or '', '', ''})
      end
    end
  else
    local s = redis.call('HMGET', k('s', id), 'state', 'kind', 'created_at', 'expires_at',
                         'revealed_at', 'revealed_by', 'revealed_by_email')
    if s[1] == 'revealed' then
      table.insert(rows, {s[2] or '', 'revealed', s[5] or '', s[3] or '', s[6] or '', s[7] or ''})
    elseif s[1] then
      if NOW >= tonumber(s[4] or '0') or redis.call('EXISTS', k('e', id)) == 0 then
        table.insert(rows, {s[2] or '', 'expired', s[4] or '', s[3] or '', '', ''})
      else
        table.insert(rows, {s[2] or '', 'waiting', s[3] or '', s[3] or '', '', ''})
      end
    end
  end
end
local deleted, more = {}, 0
local log = redis.call('XREVRANGE', k('log', ticket), '+', '-', 'COUNT', tonumber(TMAX))
-- An entry is {stream id, {'ts', ms, 'event', name, 'ticket', t, 'id', id, ...}}: the field
-- order of audit() above, which these positions rely on.
for _, entry in ipairs(log) do
  local f = entry[2]
  -- Deletions before the last purge belong to the ticket's earlier life.
  if f[4] == 'ticket.purged' then break end
  if f[4] == 'secret.deleted' then
    if #deleted < SHOWN then table.insert(deleted, {f[8], f[2]}) else more = more + 1 end
  end
end
return {redis.call('HGETALL', k('t', ticket)), rows, deleted, more}
