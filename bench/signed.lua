-- wrk script: POST one body, signed the way Help Scout signs (X-HelpScout-Signature).
-- args: BODY_FILE SIGNATURE
function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-HelpScout-Signature"] = args[2]
end
