--- A writing ticket script: its body (the script's own file, after the prelude) runs as a
--- function, so that on a Cluster its answer can travel with the writes to replay (see
--- vault/storage/scripts.py). The line "-- @body" stands for that body.
local function main()
-- @body
end
local out = REFUSED or main()
local reply = {#WHO}
for i = 1, #WHO do reply[i + 1] = WHO[i] end
if #LATER > 0 then reply[#reply + 1] = LATER else reply[#reply + 1] = '' end
for i = 1, #out do reply[#reply + 1] = out[i] end
return reply
