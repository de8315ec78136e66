--- Compare-and-set used by key rotation: never resurrects a revealed or deleted envelope.
--- KEYS: envelope. ARGV: expected, replacement.

if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return {1}
