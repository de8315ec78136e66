--- Accounts (all under the {acct} hash tag). KEYS: token or session key. ARGV: prefix, now ms,
--- kind ('token' or 'session'), idle ms, max ms.

return authenticate(ARGV[1], KEYS[1], ARGV[3], tonumber(ARGV[2]), tonumber(ARGV[4]),
                    tonumber(ARGV[5]))
