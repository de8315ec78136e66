--- A few plain writes as one atomic step, so that they go through the same path as every script
--- (one round trip, and WAIT on the same connection with VAULT_REDIS_MIN_REPLICAS).
--- KEYS: every key written (one slot). ARGV: for each command, its word count, then its words.

local out, i = {}, 1
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  out[#out + 1] = redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return out
