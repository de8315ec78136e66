-- wrk script: POST one of a file's bodies (one a line, cycled), to the URL's path.
-- args: FILE CONTENT_TYPE [ACCEPT]
-- Each wrk thread starts at a different line, so threads do not send the same body in step.
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

local bodies = {}
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  assert(#bodies > 0, "no bodies in " .. args[1])
  wrk.method = "POST"
  wrk.headers["Content-Type"] = args[2]
  if args[3] and args[3] ~= "" then wrk.headers["Accept"] = args[3] end
  i = ((tid or 0) * 7919) % #bodies
end

function request()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
