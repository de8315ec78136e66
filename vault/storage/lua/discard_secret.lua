--- The assignee's (or an admin's) discard of a waiting secret, unread, without the manage token:
--- junk in the share flow's room goes without purging the ticket. The actor (ARGV[8]) is the
--- agent. KEYS: secret hash, envelope. ARGV[9..]: '1' if the agent is an admin, gone-marker
--- lifetime (ms), the ticket the secret must be of ('' for any: a secret of another ticket is
--- then 'notfound'). Nobody else may (403 before 410, as for a reveal; the refusal is audited);
--- a ticket without an assignee, only an admin. Answers {'ok', ticket}.

local id = string.sub(KEYS[1], -28)
local admin, only = ARGV[9] == '1', ARGV[11]
-- How the agent may discard `ticket`'s secrets ('the assignee', 'an admin'), or nil.
local function as(ticket)
  if ACTOR ~= '' and assignee_of(ticket) == ACTOR then return 'the assignee' end
  if admin then return 'an admin' end
  return nil
end
local s = hash(KEYS[1])
local ticket
if s then ticket = s.ticket else
  local reason, owner = gone(id)
  if not reason then return {'notfound'} end
  if not owner then return {'gone', reason} end
  if only ~= '' and owner ~= only then return {'notfound'} end
  if not as(owner) then
    audit(owner, 'discard.refused', id, 'not the assignee')
    return {'forbidden'}
  end
  return {'gone', reason}
end
if only ~= '' and ticket ~= only then return {'notfound'} end
local by = as(ticket)
if not by then
  audit(ticket, 'discard.refused', id, 'not the assignee')
  return {'forbidden'}
end
if s.state ~= 'waiting' then return {'gone', 'revealed', s.revealed_by or '', s.revealed_at or ''} end
if NOW >= tonumber(s.expires_at) then return {'gone', 'expired'} end
drop(id, s, 'discarded', ARGV[10])
audit(ticket, 'secret.discarded', id, s.kind .. ' by ' .. by)
return {'ok', ticket}
