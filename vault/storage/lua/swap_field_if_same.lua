--- The same for a hash field (an agent's wrapped TOTP secret). KEYS: hash. ARGV: field,
--- expected, replacement.

if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return {0} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return {1}
