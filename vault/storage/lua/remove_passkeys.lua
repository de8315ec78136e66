--- Remove passkeys of one agent: each from the agent's set, the credential index and its record,
--- and the agent's count, in one step. A passkey that is not the agent's is left alone.
--- KEYS: passkey-ids hash, the agent's passkey set, the agent's record, then each passkey's
--- hash. ARGV: the passkeys' public ids, in the order of their keys. Answers {how many went}.

local removed = 0
for i = 4, #KEYS do
  local id = ARGV[i - 3]
  if redis.call('SREM', KEYS[2], id) == 1 then
    local digest = redis.call('HGET', KEYS[i], 'cred_digest')
    if digest then redis.call('HDEL', KEYS[1], digest) end
    redis.call('DEL', KEYS[i])
    removed = removed + 1
  end
end
if removed > 0 and redis.call('HGET', KEYS[3], 'email') then
  redis.call('HINCRBY', KEYS[3], 'passkeys', -removed)
end
return {removed}
