-- wrk script: POST to each path of a file once (one a line), so every request reveals a
-- different secret. args: FILE NTHREADS [AUTHORIZATION]
-- Thread k of n takes lines k, k+n, k+2n, ...: no two requests of the run share a path. A thread
-- that runs out repeats its last path (the answers then count as non-2xx: bench.py reports it).
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

local paths = {}
local i = 0

function init(args)
  local n, k = tonumber(args[2]), 0
  for line in io.lines(args[1]) do
    if #line > 0 then
      if k % n == (tid or 0) then paths[#paths + 1] = line end
      k = k + 1
    end
  end
  assert(#paths > 0, "no paths in " .. args[1])
  if args[3] and args[3] ~= "" then wrk.headers["Authorization"] = args[3] end
end

function request()
  i = i + 1
  return wrk.format("POST", paths[i] or paths[#paths])
end
