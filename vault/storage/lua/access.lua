--- Authentication and rate limits: used by the gate of every ticket script, by AUTHENTICATE and
--- by GATE, so the three never disagree.

-- A token's or session's record -> {'agent', e-mail, name, role, id, session},
-- {'apikey', name, id}, or nil. Every token and session carries its agent's revocation epoch:
-- a disabled or removed agent, or a changed epoch, ends it here (and its key goes).
local function authenticate(prefix, key, kind, now, idle, max)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return nil end
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  if h.type == 'apikey' then return {'apikey', h.owner, h.id} end
  local a = redis.call('HMGET', prefix .. '{acct}:agent:' .. h.owner, 'email', 'name', 'role',
                       'epoch', 'disabled')
  if not a[1] or a[5] == '1' or a[4] ~= h.epoch then
    redis.call('DEL', key)
    return nil
  end
  local session = 't:' .. h.id
  if kind == 'session' then
    if now - tonumber(h.created_at) >= max or now - tonumber(h.seen_at) >= idle then
      redis.call('DEL', key)
      return nil
    end
    redis.call('HSET', key, 'seen_at', now)
    redis.call('PEXPIRE', key, math.min(idle, tonumber(h.created_at) + max - now))
    session = 's:' .. h.id
  end
  local name = a[2]
  if not name or name == '' then name = a[1] end
  return {'agent', a[1], name, a[3] or 'agent', h.id, session}
end
-- Fixed windows, counted as flask-limiter's `limits` library counts them in Redis (its
-- incr_expire script): every hit counts, the first one starts the window, a count over the
-- amount is refused. `spec`: one "amount seconds head tail" per limit (vault.ratelimit); the
-- counter is prefix .. head .. identity .. tail. Answers the seconds until the refusing window
-- ends (rounded up, at least 1), or nil when every limit let the hit through.
local function over_limit(prefix, spec, identity)
  for amount, seconds, head, tail in string.gmatch(spec, '(%d+) (%d+) (%S+) (%S+)') do
    local key = prefix .. '{acct}:LIMITS:' .. head .. identity .. tail
    local n = redis.call('INCRBY', key, '1')  -- INCRBY: the ACL of deploy/redis allows it
    if n == 1 then redis.call('EXPIRE', key, seconds) end
    if n > tonumber(amount) then
      local left = redis.call('PTTL', key)
      if left < 1000 then return 1 end
      return math.ceil(left / 1000)
    end
  end
  return nil
end
-- The gate: {'ok', who or {}} or a refusal ({'unauthenticated'}, {'notagent'},
-- {'limited', seconds}). `args` from `first`: key, kind, idle, max, identity, spec.
local function pass_gate(prefix, now, args, first)
  local key, identity, spec = args[first], args[first + 4], args[first + 5]
  local who = {}
  if key ~= '' then
    who = authenticate(prefix, key, args[first + 1], now, tonumber(args[first + 2]),
                       tonumber(args[first + 3]))
    if not who then return {'unauthenticated'} end
    if who[1] ~= 'agent' then return {'notagent'} end
    if identity == '' then identity = who[2] end
  end
  if spec ~= '' then
    local left = over_limit(prefix, spec, identity)
    if left then return {'limited', left} end
  end
  return {'ok', who}
end
