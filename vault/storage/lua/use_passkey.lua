--- A passkey signed a sign-in: keep its new signature counter and the time, unless the counter
--- did not grow (a cloned authenticator, or a replay), checked here so that two sign-ins racing
--- with the same counter cannot both pass. A counter that stays 0 on both sides is an
--- authenticator that keeps none (most synced passkeys).
--- KEYS: the passkey's hash. ARGV: the new counter, now (ms).
--- Answers {'ok'}, {'count'} or {'gone'}.

local stored = redis.call('HGET', KEYS[1], 'count')
if not stored then return {'gone'} end
local new, old = tonumber(ARGV[1]), tonumber(stored)
if (new > 0 or old > 0) and new <= old then return {'count'} end
redis.call('HSET', KEYS[1], 'count', ARGV[1], 'used_at', ARGV[2])
return {'ok'}
