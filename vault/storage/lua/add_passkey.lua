--- Register a passkey in one step: a credential id belongs to one passkey of one agent, ever.
--- KEYS: passkey-ids hash, the agent's passkey set, the passkey's hash, the agent's record.
--- ARGV: the credential id's digest, the passkey's public id, then its field/value pairs.
--- Answers {'ok'}, {'taken'} (that credential is registered already) or {'gone'} (no agent).

if redis.call('HGET', KEYS[1], ARGV[1]) then return {'taken'} end
if not redis.call('HGET', KEYS[4], 'email') then return {'gone'} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], unpack(ARGV, 3))
redis.call('HINCRBY', KEYS[4], 'passkeys', 1)
return {'ok'}
