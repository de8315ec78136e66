--- The gate alone, in the account slot: a Cluster's first round trip of a gated step, and the
--- rate limits of routes that have no script of their own (logins, webhooks). KEYS: a key of the
--- account slot (routing only). ARGV: prefix, now ms, then the gate's six (see the docstring).

return pass_gate(ARGV[1], tonumber(ARGV[2]), ARGV, 3)
