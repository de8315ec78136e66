--- Create an agent in one step: the e-mail set and the record never disagree.
--- KEYS: agents set, agent hash. ARGV: e-mail, Help Scout mapping key or '', field/value pairs.

if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return {0} end
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
if ARGV[2] ~= '' then redis.call('SET', ARGV[2], ARGV[1]) end
return {1}
