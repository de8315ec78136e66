"""The OpenAPI 3.1 document of the JSON API, served at /api/v1/openapi.json.

Data only. It describes what the views read and what `vault.service` builds, and the tests keep
it true: every route of the app is in it with the same methods (tests/test_openapi.py), and
schemathesis fuzzes the app against it (tests/test_fuzz_api.py). Request schemas describe what
the server accepts, no less and no more: a field the server ignores is left unconstrained, so
that what the document calls invalid is exactly what the server refuses.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from vault.api import ops

_PROBLEMS = {400: "BadRequest", 401: "Unauthenticated", 403: "Forbidden", 404: "NotFound",
             409: "Conflict", 410: "Gone", 413: "TooLarge", 429: "RateLimited",
             503: "Unavailable"}


def problems(*codes: int) -> dict[str, Any]:
    """The shared problem+json responses for these status codes."""
    return {str(code): {"$ref": f"#/components/responses/{_PROBLEMS[code]}"} for code in codes}


PROBLEM = "application/problem+json"
JSON = "application/json"

# What `normalise_email` accepts: printable ASCII without spaces, around one @, after Python's
# str.strip() (its whitespace characters spelled out so every regex engine reads them alike).
_WS = r"\t\n\u000b\f\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
EMAIL_PATTERN = f"^[{_WS}]*[!-?A-~]{{1,64}}@[!-?A-~]{{1,190}}[{_WS}]*$"

# Canonical base64url without padding (a last character with unused bits clear), after `v1.`;
# with minLength 41 it is exactly "at least 28 bytes decoded" (docs/api.md, "Exact formats").
ENVELOPE_PATTERN = (r"^v1\.(?:[A-Za-z0-9_-]{4}){9,}"
                    r"(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$")

# Who may call: agents by bearer token or by web session (whose state changes carry the CSRF
# token); helpdesk keys are bearer tokens too, accepted on the ticket routes that say so.
AGENT_READ: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"cookieAuth": []}]
AGENT_WRITE: list[dict[str, list[str]]] = [{"bearerAuth": []},
                                           {"cookieAuth": [], "csrfToken": []}]
PUBLIC: list[dict[str, list[str]]] = []
# A web session only: what needs a recent sign-in, which an API token never is (403 `reauth`).
SESSION_WRITE: list[dict[str, list[str]]] = [{"cookieAuth": [], "csrfToken": []}]

_OPTIONAL_EMPTY_OBJECT = {
    "required": False,
    "description": "No body is needed; an empty JSON object (or any JSON object) is accepted.",
    "content": {JSON: {"schema": {"type": "object"}}},
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "vault",
        "version": "1",
        "summary": "One-time credential exchange bound to helpdesk tickets.",
        "description": (
            "JSON in and out. Every error is `application/problem+json` (RFC 9457) with "
            "`type`, `title`, `status` and `detail`; validation errors add `invalid_params`. "
            "Status codes mean the same everywhere: 400 bad input, 401 not authenticated, "
            "403 not allowed, 404 unknown (also for ids of the wrong shape), 409 conflict, "
            "410 gone (revealed, deleted, purged or expired), 413 too large (64 KiB), "
            "429 rate limited and 503 store unavailable (both with `Retry-After`). "
            "A method a path does not have is 405."),
        "license": {"name": "MIT", "identifier": "MIT"},
    },
    "tags": [
        {"name": "requests", "description": "Agent-first flow: ask a customer for credentials."},
        {"name": "secrets", "description": "Envelopes, their metadata, reveal and delete."},
        {"name": "tickets", "description": "Assignee, purge and reopen of a helpdesk ticket."},
        {"name": "session", "description": "Web login of agents."},
        {"name": "passkeys", "description": "Agents' passkeys (WebAuthn)."},
        {"name": "webhooks", "description": "Signed helpdesk events."},
        {"name": "operations", "description": "Liveness, readiness, metrics, this document."},
    ],
    "paths": {
        "/api/v1/requests": {
            "post": {
                "operationId": "createRequest",
                "tags": ["requests"],
                "summary": "Create a request for credentials on a ticket",
                "description": (
                    "The caller becomes the ticket's assignee if it has none. The link to "
                    "send is `url` followed by `#` and the key the caller generated."),
                "security": AGENT_WRITE,
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": {"$ref": "#/components/schemas/NewRequest"}}},
                },
                "responses": {
                    "201": {
                        "description": "Created.",
                        "content": {JSON: {"schema": {
                            "$ref": "#/components/schemas/CreatedRequest"}}},
                        "links": {
                            "GetRequest": {"operationId": "getRequest",
                                           "parameters": {"request_id": "$response.body#/id"}},
                            "FillRequest": {"operationId": "fillRequest",
                                            "parameters": {"request_id": "$response.body#/id"}},
                            "GetTicket": {"operationId": "getTicket",
                                          "parameters": {"ticket": "$response.body#/ticket"}},
                            "CloseTicket": {"operationId": "closeTicket",
                                            "parameters": {"ticket": "$response.body#/ticket"}},
                        },
                    },
                    **problems(400, 401, 403, 409, 413, 503),
                },
            },
        },
        "/api/v1/requests/{request_id}": {
            "get": {
                "operationId": "getRequest",
                "tags": ["requests"],
                "summary": "Public state of a request, for the customer's page",
                "description": "Never consumes anything.",
                "security": PUBLIC,
                "parameters": [{"$ref": "#/components/parameters/RequestId"}],
                "responses": {
                    "200": {"description": "The request is open, submitted or revealed.",
                            "content": {JSON: {"schema": {
                                "$ref": "#/components/schemas/RequestState"}}}},
                    **problems(404, 410, 503),
                },
            },
        },
        "/api/v1/requests/{request_id}/secret": {
            "post": {
                "operationId": "fillRequest",
                "tags": ["requests"],
                "summary": "Fill a request with the customer's envelope",
                "description": (
                    "A retry with the same envelope after a successful fill is answered with "
                    "the same secret; another envelope is 409. Rate limited per address. An "
                    "open request can always be filled: its secret takes no place in the "
                    "ticket's share-flow room, so a full ticket never refuses it."),
                "security": PUBLIC,
                "parameters": [{"$ref": "#/components/parameters/RequestId"}],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": {"$ref": "#/components/schemas/Submission"}}},
                },
                "responses": {
                    "201": {
                        "description": "Stored.",
                        "content": {JSON: {"schema": {
                            "$ref": "#/components/schemas/FilledRequest"}}},
                        "links": {
                            "GetSecret": {"operationId": "getSecret",
                                          "parameters": {"secret_id": "$response.body#/secret_id"}},
                            "RevealSecret": {"operationId": "revealSecret",
                                             "parameters": {
                                                 "secret_id": "$response.body#/secret_id"}},
                            "DeleteSecret": {"operationId": "deleteSecret",
                                             "parameters": {
                                                 "secret_id": "$response.body#/secret_id",
                                                 "header.X-Manage-Token":
                                                     "$response.body#/manage_token"}},
                        },
                    },
                    **problems(400, 404, 410, 413, 429, 503),
                    "409": {"$ref": "#/components/responses/FillConflict"},
                },
            },
        },
        "/api/v1/secrets": {
            "post": {
                "operationId": "createSecret",
                "tags": ["secrets"],
                "summary": "Share flow: store a customer's envelope for a ticket",
                "description": (
                    "Anonymous, rate limited per address. At most "
                    "`VAULT_MAX_WAITING_PER_TICKET` share-flow secrets wait on a ticket (its "
                    "room); beyond that, 409 `ticket-full` until one is revealed, deleted, "
                    "discarded by the assignee or expires. Fills of requests do not count."),
                "security": PUBLIC,
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": {"$ref": "#/components/schemas/NewSecret"}}},
                },
                "responses": {
                    "201": {
                        "description": "Stored.",
                        "content": {JSON: {"schema": {
                            "$ref": "#/components/schemas/CreatedSecret"}}},
                        "links": {
                            "GetSecret": {"operationId": "getSecret",
                                          "parameters": {"secret_id": "$response.body#/id"}},
                            "RevealSecret": {"operationId": "revealSecret",
                                             "parameters": {"secret_id": "$response.body#/id"}},
                            "DeleteSecret": {"operationId": "deleteSecret",
                                             "parameters": {
                                                 "secret_id": "$response.body#/id",
                                                 "header.X-Manage-Token":
                                                     "$response.body#/manage_token"}},
                        },
                    },
                    **problems(400, 409, 413, 429, 503),
                },
            },
        },
        "/api/v1/secrets/{secret_id}": {
            "get": {
                "operationId": "getSecret",
                "tags": ["secrets"],
                "summary": "Metadata of a secret (never its envelope)",
                "security": PUBLIC,
                "parameters": [{"$ref": "#/components/parameters/SecretId"}],
                "responses": {
                    "200": {"description": "Waiting or revealed.",
                            "content": {JSON: {"schema": {
                                "$ref": "#/components/schemas/SecretMeta"}}}},
                    **problems(404, 410, 503),
                },
            },
            "delete": {
                "operationId": "deleteSecret",
                "tags": ["secrets"],
                "summary": "Delete a waiting secret unread: its customer, or the ticket's "
                           "assignee",
                "description": (
                    "With `X-Manage-Token`, the customer who sent it deletes it (no other "
                    "credential is needed or looked at); its page then says `deleted`. "
                    "Without it, an agent discards it: the ticket's assignee or an admin, by "
                    "bearer token or session cookie with the CSRF token (audited as "
                    "`secret.discarded`, with who); anyone else is 403 and nothing changes "
                    "(403 is checked before 410). A discarded secret is 410 `discarded` "
                    "afterwards; a discarded fill opens its request again. With neither a "
                    "manage token nor a credential: 403."),
                "security": [{}, {"bearerAuth": []}, {"cookieAuth": [], "csrfToken": []}],
                "parameters": [{"$ref": "#/components/parameters/SecretId"},
                               {"$ref": "#/components/parameters/ManageToken"}],
                "responses": {
                    "204": {"description": "Deleted (by the customer) or discarded (by the "
                                           "assignee or an admin)."},
                    **problems(401, 403, 404, 410, 503),
                },
            },
        },
        "/api/v1/secrets/{secret_id}/reveal": {
            "post": {
                "operationId": "revealSecret",
                "tags": ["secrets"],
                "summary": "Hand the envelope to the ticket's assignee, once",
                "description": (
                    "One session gets the envelope, ever; that session (only) may fetch it "
                    "again within the grace window. 403 (not the assignee) is checked before "
                    "410 and consumes nothing. Rate limited per agent."),
                "security": AGENT_WRITE,
                "parameters": [{"$ref": "#/components/parameters/SecretId"}],
                "requestBody": _OPTIONAL_EMPTY_OBJECT,
                "responses": {
                    "200": {
                        "description": "The envelope, for this session.",
                        "content": {JSON: {"schema": {"$ref": "#/components/schemas/Revealed"}}},
                        "links": {
                            "AckSecret": {"operationId": "ackSecret",
                                          "parameters": {"secret_id": "$request.path.secret_id"}},
                        },
                    },
                    **problems(400, 401, 403, 404, 410, 413, 429, 503),
                },
            },
        },
        "/api/v1/secrets/{secret_id}/ack": {
            "post": {
                "operationId": "ackSecret",
                "tags": ["secrets"],
                "summary": "The revealing session decrypted it: delete the envelope now",
                "description": "204 also when the envelope is already gone; 403 for any other "
                               "session.",
                "security": AGENT_WRITE,
                "parameters": [{"$ref": "#/components/parameters/SecretId"}],
                "requestBody": _OPTIONAL_EMPTY_OBJECT,
                "responses": {
                    "204": {"description": "Acknowledged."},
                    **problems(400, 401, 403, 404, 410, 413, 503),
                },
            },
        },
        "/api/v1/tickets/{ticket}": {
            "get": {
                "operationId": "getTicket",
                "tags": ["tickets"],
                "summary": "A ticket: assignee, state, requests and secrets (metadata), audit",
                "description": "Agents only (a helpdesk key is 403).",
                "security": AGENT_READ,
                "parameters": [{"$ref": "#/components/parameters/Ticket"}],
                "responses": {
                    "200": {"description": "The ticket as vault knows it.",
                            "content": {JSON: {"schema": {
                                "$ref": "#/components/schemas/TicketView"}}}},
                    **problems(400, 401, 403, 503),
                },
            },
        },
        "/api/v1/tickets/{ticket}/assignee": {
            "put": {
                "operationId": "setAssignee",
                "tags": ["tickets"],
                "summary": "Set the ticket's assignee (admin or helpdesk key)",
                "description": (
                    "An e-mail that is no vault agent is accepted (`known_agent: false`): "
                    "nobody can reveal until that agent exists or an admin reassigns."),
                "security": AGENT_WRITE,
                "parameters": [{"$ref": "#/components/parameters/Ticket"}],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": {"$ref": "#/components/schemas/NewAssignee"}}},
                },
                "responses": {
                    "200": {"description": "Assigned.",
                            "content": {JSON: {"schema": {
                                "$ref": "#/components/schemas/Assigned"}}}},
                    **problems(400, 401, 403, 413, 503),
                },
            },
        },
        "/api/v1/tickets/{ticket}/close": {
            "post": {
                "operationId": "closeTicket",
                "tags": ["tickets"],
                "summary": "Purge every secret and open request of the ticket (idempotent)",
                "description": (
                    "Admin or helpdesk key. The ticket refuses submissions (409) until it is "
                    "reopened or its tombstone expires."),
                "security": AGENT_WRITE,
                "parameters": [{"$ref": "#/components/parameters/Ticket"}],
                "requestBody": _OPTIONAL_EMPTY_OBJECT,
                "responses": {
                    "200": {
                        "description": "Purged (`purged` counts secrets and open requests).",
                        "content": {JSON: {"schema": {"$ref": "#/components/schemas/Closed"}}},
                        "links": {
                            "ReopenTicket": {"operationId": "reopenTicket",
                                             "parameters": {"ticket": "$response.body#/ticket"}},
                        },
                    },
                    **problems(400, 401, 403, 413, 503),
                },
            },
        },
        "/api/v1/tickets/{ticket}/reopen": {
            "post": {
                "operationId": "reopenTicket",
                "tags": ["tickets"],
                "summary": "Accept submissions again (admin or helpdesk key)",
                "security": AGENT_WRITE,
                "parameters": [{"$ref": "#/components/parameters/Ticket"}],
                "requestBody": _OPTIONAL_EMPTY_OBJECT,
                "responses": {
                    "200": {"description": "`reopened` is false when the ticket was not closed.",
                            "content": {JSON: {"schema": {
                                "$ref": "#/components/schemas/Reopened"}}}},
                    **problems(400, 401, 403, 413, 503),
                },
            },
        },
        "/api/v1/session": {
            "post": {
                "operationId": "login",
                "tags": ["session"],
                "summary": "Log in: sets the session cookie, answers the CSRF token",
                "description": (
                    "Every failure is the same 401, so the answer does not tell which e-mails "
                    "have accounts. Rate limited per account and per address. With "
                    "VAULT_OIDC_ONLY, 403 `sso-only`: agents sign in through the identity "
                    "provider (`GET /login/oidc`); with VAULT_OIDC_ADMIN_PASSWORD, admins "
                    "still may here."),
                "security": PUBLIC,
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": {"$ref": "#/components/schemas/Login"}}},
                },
                "responses": {
                    "200": {
                        "description": "Logged in.",
                        "headers": {"Set-Cookie": {
                            "description": "`__Host-vault_session`, HttpOnly, Secure, "
                                           "SameSite=Lax, Path=/.",
                            "required": True,
                            "schema": {"type": "string", "pattern": "^__Host-vault_session="}}},
                        "content": {JSON: {"schema": {"$ref": "#/components/schemas/Session"}}},
                    },
                    **problems(400, 401, 403, 413, 429, 503),
                },
            },
            "get": {
                "operationId": "getSession",
                "tags": ["session"],
                "summary": "Who is calling (and the CSRF token of a web session)",
                "description": "`csrf_token` is null for bearer tokens.",
                "security": AGENT_READ,
                "responses": {
                    "200": {"description": "The caller.",
                            "content": {JSON: {"schema": {
                                "$ref": "#/components/schemas/Session"}}}},
                    **problems(401, 503),
                },
            },
            "delete": {
                "operationId": "logout",
                "tags": ["session"],
                "summary": "Log out (ends the web session; a bearer token stays valid)",
                "security": AGENT_WRITE,
                "responses": {
                    "204": {"description": "Logged out; the cookie is cleared."},
                    **problems(401, 403, 503),
                },
            },
        },
        "/api/v1/passkeys/sign-in/options": {
            "post": {
                "operationId": "passkeySignInOptions",
                "tags": ["session", "passkeys"],
                "summary": "Start a passkey sign-in: options for navigator.credentials.get()",
                "description": (
                    "A one-time challenge (five minutes) bound to this browser by the "
                    "`__Host-vault_pk` cookie set here; any passkey of this site (no allow "
                    "list), user verification required. Rate limited per address as logins "
                    "are, in a count of its own (the login page asks as it loads)."),
                "security": PUBLIC,
                "requestBody": _OPTIONAL_EMPTY_OBJECT,
                "responses": {
                    "200": {
                        "description": "The options, binary fields in base64url.",
                        "headers": {"Set-Cookie": {
                            "description": "`__Host-vault_pk`, HttpOnly, Secure, "
                                           "SameSite=Strict, Path=/.",
                            "required": True,
                            "schema": {"type": "string", "pattern": "^__Host-vault_pk="}}},
                        "content": {JSON: {"schema": {
                            "$ref": "#/components/schemas/PasskeyOptions"}}},
                    },
                    **problems(400, 413, 429, 503),
                },
            },
        },
        "/api/v1/passkeys/sign-in": {
            "post": {
                "operationId": "passkeySignIn",
                "tags": ["session", "passkeys"],
                "summary": "Sign in with a passkey: sets the session cookie",
                "description": (
                    "The browser's answer to the options, from the browser that asked for "
                    "them (its `__Host-vault_pk` cookie). Every refusal is the same 401 "
                    "`passkey` (an unknown, expired, replayed or other browser's challenge, an "
                    "unknown passkey, a disabled agent, a wrong origin or relying party, no "
                    "user verification, a bad signature, a signature counter that did not "
                    "grow), audited `login.failed` with its reason. With VAULT_OIDC_ONLY, 403 "
                    "`sso-only` (admins may with VAULT_OIDC_ADMIN_PASSWORD). A session this "
                    "browser had is ended."),
                "security": PUBLIC,
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": {
                        "$ref": "#/components/schemas/PasskeySignIn"}}},
                },
                "responses": {
                    "200": {
                        "description": "Signed in.",
                        "headers": {"Set-Cookie": {
                            "description": "`__Host-vault_session`, HttpOnly, Secure, "
                                           "SameSite=Lax, Path=/.",
                            "required": True,
                            "schema": {"type": "string", "pattern": "^__Host-vault_"}}},
                        "content": {JSON: {"schema": {"$ref": "#/components/schemas/Session"}}},
                    },
                    **problems(400, 401, 403, 413, 429, 503),
                },
            },
        },
        "/api/v1/passkeys/options": {
            "post": {
                "operationId": "passkeyRegistrationOptions",
                "tags": ["passkeys"],
                "summary": "Start adding a passkey: options for navigator.credentials.create()",
                "description": (
                    "For the agent of a web session signed in within VAULT_REAUTH_WINDOW; "
                    "otherwise (an API token too) 403 `reauth`. A discoverable credential with "
                    "user verification, none of the agent's passkeys again, no attestation. "
                    "The challenge is bound to this browser (`__Host-vault_pk`) and session. "
                    "403 `sso-only` where VAULT_OIDC_ONLY leaves the agent no passkey sign-in; "
                    "409 `passkey-limit` at 20 passkeys."),
                "security": SESSION_WRITE,
                "requestBody": _OPTIONAL_EMPTY_OBJECT,
                "responses": {
                    "200": {
                        "description": "The options, binary fields in base64url.",
                        "headers": {"Set-Cookie": {
                            "description": "`__Host-vault_pk`, HttpOnly, Secure, "
                                           "SameSite=Strict, Path=/.",
                            "required": True,
                            "schema": {"type": "string", "pattern": "^__Host-vault_pk="}}},
                        "content": {JSON: {"schema": {
                            "$ref": "#/components/schemas/PasskeyOptions"}}},
                    },
                    **problems(400, 401, 403, 404, 413, 503),
                    "409": {"$ref": "#/components/responses/PasskeyConflict"},
                },
            },
        },
        "/api/v1/passkeys": {
            "post": {
                "operationId": "registerPasskey",
                "tags": ["passkeys"],
                "summary": "Add a passkey: the browser's answer to the options, and a name",
                "description": (
                    "For the same browser and web session that asked for the options, signed "
                    "in within VAULT_REAUTH_WINDOW (otherwise, an API token too, 403 `reauth`). "
                    "400 `passkey` for an answer that is not to such a challenge (or expired, "
                    "or used) or that does not verify; 409 `passkey-taken` for a credential "
                    "registered already. Audited `passkey.registered`."),
                "security": SESSION_WRITE,
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": {
                        "$ref": "#/components/schemas/NewPasskey"}}},
                },
                "responses": {
                    "201": {"description": "Added.",
                            "content": {JSON: {"schema": {
                                "$ref": "#/components/schemas/Passkey"}}}},
                    **problems(400, 401, 403, 404, 413, 503),
                    "409": {"$ref": "#/components/responses/PasskeyConflict"},
                },
            },
        },
        "/api/v1/webhooks/helpscout": {
            "post": {
                "operationId": "helpscoutWebhook",
                "tags": ["webhooks"],
                "summary": "Help Scout's native webhook",
                "description": (
                    "Verified with `X-HelpScout-Signature` against every configured secret, "
                    "then acted on once: `convo.status` to closed or spam, `convo.deleted`, "
                    "`convo.merged` purge; `convo.assigned` sets the assignee (`assignee` or "
                    "`owner` e-mail, 400 if it is not an e-mail); `convo.status` to active, "
                    "pending or open reopens; other events are answered and ignored. The "
                    "same event and body again within 24 h gets the first answer with "
                    "`duplicate: true`. Never 410. Rate limited."),
                "security": PUBLIC,
                "parameters": [{"$ref": "#/components/parameters/HelpScoutSignature"},
                               {"$ref": "#/components/parameters/HelpScoutEvent"}],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": {
                        "$ref": "#/components/schemas/HelpScoutConversation"}}},
                },
                "responses": {
                    "200": {"description": "Applied, ignored, or a duplicate.",
                            "content": {JSON: {"schema": {
                                "$ref": "#/components/schemas/HelpScoutResult"}}}},
                    **problems(400, 401, 413, 429, 503),
                },
            },
        },
        "/integrations/helpscout/sidebar": {
            "post": {
                "operationId": "helpscoutSidebar",
                "tags": ["webhooks"],
                "summary": "Help Scout's dynamic sidebar app",
                "description": (
                    "Signed like Help Scout's webhooks, with VAULT_HELPSCOUT_APP_SECRET. Answers "
                    "escaped HTML (English) describing the conversation's ticket in vault: the "
                    "assignee and who revealed each secret by their display name, each request "
                    "and secret with its state and times, links (new tab) to the new-request "
                    "page (for a Help Scout user mapped to an enabled vault agent) and to the "
                    "ticket page. Never an envelope, key, token or customer field. A draft "
                    "(`ticket: false`) gets a short neutral message. Two Redis round trips "
                    "after the signature is checked (the ticket's script, then the agents' "
                    "names); calls are counted per ticket against VAULT_RATELIMIT_WEBHOOK in "
                    "the first (429 with Retry-After when over)."),
                "security": PUBLIC,
                "parameters": [{"$ref": "#/components/parameters/HelpScoutSignature"}],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": {
                        "type": "object",
                        "properties": {
                            "ticket": {"oneOf": [
                                {"type": "boolean", "const": False},
                                {"type": "object", "properties": {
                                    "id": {"type": "integer"},
                                    "number": {"type": "integer"},
                                    "subject": {"type": "string"}}}]},
                            "customer": {"type": "object"},
                            "user": {"type": "object",
                                     "properties": {"id": {"type": "integer"}}},
                            "mailbox": {"type": "object"},
                        },
                    }}},
                },
                "responses": {
                    "200": {"description": "The sidebar's HTML.",
                            "content": {JSON: {"schema": {
                                "type": "object", "required": ["html"],
                                "properties": {"html": {"type": "string"}}}}}},
                    **problems(400, 401, 413, 429, 503),
                },
            },
        },
        "/api/v1/webhooks/standard": {
            "post": {
                "operationId": "standardWebhook",
                "tags": ["webhooks"],
                "summary": "Standard Webhooks from any ticket system",
                "description": (
                    "Signed per Standard Webhooks (`v1,` base64 HMAC-SHA256 of "
                    "`id.timestamp.body`, 5-minute tolerance, several signatures and secrets "
                    "accepted). A repeated `webhook-id` gets the first answer with "
                    "`duplicate: true`. Unknown types are answered and ignored. Never 410. "
                    "Rate limited."),
                "security": PUBLIC,
                "parameters": [{"$ref": "#/components/parameters/WebhookId"},
                               {"$ref": "#/components/parameters/WebhookTimestamp"},
                               {"$ref": "#/components/parameters/WebhookSignature"}],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": {
                        "$ref": "#/components/schemas/StandardEvent"}}},
                },
                "responses": {
                    "200": {"description": "Applied, ignored, or a duplicate.",
                            "content": {JSON: {"schema": {
                                "$ref": "#/components/schemas/StandardResult"}}}},
                    **problems(400, 401, 413, 429, 503),
                },
            },
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "tags": ["operations"],
                "summary": "Liveness: the process answers (no Redis needed)",
                "security": PUBLIC,
                "responses": {
                    "200": {"description": "Alive.",
                            "content": {JSON: {"schema": {
                                "type": "object",
                                "required": ["status"],
                                "properties": {"status": {"const": "ok"}},
                                "additionalProperties": False}}}},
                },
            },
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "tags": ["operations"],
                "summary": "Readiness: Redis answers and the key ring works",
                "security": PUBLIC,
                "responses": {
                    "200": {"description": "Ready.",
                            "content": {JSON: {"schema": {
                                "$ref": "#/components/schemas/Readiness"}}}},
                    "503": {"description": "Not ready (the same body, saying what fails).",
                            "headers": {"Retry-After": {
                                "$ref": "#/components/headers/RetryAfter"}},
                            "content": {JSON: {"schema": {
                                "$ref": "#/components/schemas/Readiness"}}}},
                },
            },
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "tags": ["operations"],
                "summary": "Prometheus metrics (scraped from inside the network)",
                "security": PUBLIC,
                "responses": {
                    "200": {"description": "Prometheus text exposition format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}}},
                },
            },
        },
        "/api/v1/openapi.json": {
            "get": {
                "operationId": "openapi",
                "tags": ["operations"],
                "summary": "This document",
                "security": PUBLIC,
                "responses": {
                    "200": {"description": "OpenAPI 3.1.",
                            "content": {JSON: {"schema": {
                                "type": "object",
                                "required": ["openapi", "info", "paths"],
                                "properties": {"openapi": {"const": "3.1.0"}}}}}},
                },
            },
        },
    },
    "components": {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": (
                    "An agent API token (`vt_` + 43 base64url characters; one token is one "
                    "session) or, on the ticket assignee, close and reopen routes, a helpdesk "
                    "key (`vk_` + 43)."),
            },
            "cookieAuth": {
                "type": "apiKey",
                "in": "cookie",
                "name": "__Host-vault_session",
                "description": "The web login's session cookie (POST /api/v1/session).",
            },
            "csrfToken": {
                "type": "apiKey",
                "in": "header",
                "name": "X-CSRF-Token",
                "description": "The session's CSRF token; required with the cookie on every "
                               "method that can change state.",
            },
        },
        "parameters": {
            "RequestId": {
                "name": "request_id", "in": "path", "required": True,
                "description": "28 base64url characters; any other shape is 404.",
                "schema": {"$ref": "#/components/schemas/Id"},
            },
            "SecretId": {
                "name": "secret_id", "in": "path", "required": True,
                "description": "28 base64url characters; any other shape is 404.",
                "schema": {"$ref": "#/components/schemas/Id"},
            },
            "Ticket": {
                "name": "ticket", "in": "path", "required": True,
                "description": "The helpdesk's ticket number; any other shape is 400.",
                "schema": {"$ref": "#/components/schemas/Ticket"},
            },
            "ManageToken": {
                "name": "X-Manage-Token", "in": "header", "required": False,
                "description": "The manage token answered when the secret was created; "
                               "wrong is 403. Without it, the call is an agent's discard "
                               "(or 403 when it has no agent credential either).",
                "schema": {"$ref": "#/components/schemas/ManageToken"},
            },
            "HelpScoutSignature": {
                "name": "X-HelpScout-Signature", "in": "header", "required": True,
                "description": "Base64 HMAC-SHA1 of the raw body with the webhook secret; "
                               "missing or wrong is 401.",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9+/]{27}=$"},
            },
            "HelpScoutEvent": {
                "name": "X-HelpScout-Event", "in": "header", "required": False,
                "description": "The event; unknown events are answered and ignored.",
                "schema": {"type": "string",
                           "examples": ["convo.status", "convo.assigned", "convo.deleted",
                                        "convo.merged", "helpscout.test"]},
            },
            "WebhookId": {
                "name": "webhook-id", "in": "header", "required": True,
                "description": "The delivery's id (at most 256 characters); repeats are "
                               "answered from the first delivery.",
                "schema": {"type": "string", "pattern": "^[!-~]{1,256}$"},
            },
            "WebhookTimestamp": {
                "name": "webhook-timestamp", "in": "header", "required": True,
                "description": "Seconds since the epoch, within 5 minutes of the server's "
                               "clock.",
                "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
            },
            "WebhookSignature": {
                "name": "webhook-signature", "in": "header", "required": True,
                "description": "Space-separated `v1,<base64 HMAC-SHA256>` signatures; other "
                               "versions are skipped.",
                "schema": {"type": "string", "pattern": "^[!-~]+( [!-~]+)*$"},
            },
        },
        "headers": {
            "RetryAfter": {
                "description": "Seconds to wait before trying again.",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            },
            "WWWAuthenticate": {
                "description": "`Bearer realm=\"vault\"`.",
                "required": True,
                "schema": {"type": "string", "pattern": "^Bearer "},
            },
        },
        "responses": {
            "BadRequest": {
                "description": "Bad input: not a JSON object, not UTF-8, nested too deeply, "
                               "or fields that are not valid (`invalid_params`).",
                "content": {PROBLEM: {"schema": {"allOf": [
                    {"$ref": "#/components/schemas/Problem"},
                    {"properties": {"status": {"const": 400}}}]}}},
            },
            "Unauthenticated": {
                "description": "No valid credentials (or no valid webhook signature).",
                "headers": {"WWW-Authenticate": {"$ref": "#/components/headers/WWWAuthenticate"}},
                "content": {PROBLEM: {"schema": {"allOf": [
                    {"$ref": "#/components/schemas/Problem"},
                    {"properties": {"status": {"const": 401}}}]}}},
            },
            "Forbidden": {
                "description": "Not allowed: not the assignee, not the revealing session, not "
                               "an admin or helpdesk key, a wrong manage or CSRF token.",
                "content": {PROBLEM: {"schema": {"allOf": [
                    {"$ref": "#/components/schemas/Problem"},
                    {"properties": {"status": {"const": 403}}}]}}},
            },
            "NotFound": {
                "description": "Unknown, or an id of the wrong shape.",
                "content": {PROBLEM: {"schema": {"allOf": [
                    {"$ref": "#/components/schemas/Problem"},
                    {"properties": {"status": {"const": 404}}}]}}},
            },
            "Conflict": {
                "description": "The ticket is closed or its share-flow room is full, or the "
                               "request is already filled (`reason`).",
                "content": {PROBLEM: {"schema": {"allOf": [
                    {"$ref": "#/components/schemas/Problem"},
                    {"required": ["reason"],
                     "properties": {"status": {"const": 409},
                                    "reason": {"enum": ["ticket-closed", "ticket-full",
                                                        "already-filled"]}}}]}}},
            },
            "PasskeyConflict": {
                "description": "The agent has as many passkeys as allowed (`passkey-limit`), "
                               "or the credential is registered already (`passkey-taken`).",
                "content": {PROBLEM: {"schema": {"allOf": [
                    {"$ref": "#/components/schemas/Problem"},
                    {"required": ["reason"],
                     "properties": {"status": {"const": 409},
                                    "reason": {"enum": ["passkey-limit",
                                                        "passkey-taken"]}}}]}}},
            },
            "FillConflict": {
                "description": "The ticket is closed, or the request is already filled "
                               "(`reason`). Never full: a fill takes no share-flow room.",
                "content": {PROBLEM: {"schema": {"allOf": [
                    {"$ref": "#/components/schemas/Problem"},
                    {"required": ["reason"],
                     "properties": {"status": {"const": 409},
                                    "reason": {"enum": ["ticket-closed",
                                                        "already-filled"]}}}]}}},
            },
            "Gone": {
                "description": "Revealed (with who and when), deleted by its customer, "
                               "discarded by the ticket's assignee, purged or expired "
                               "(`reason`).",
                "content": {PROBLEM: {"schema": {"allOf": [
                    {"$ref": "#/components/schemas/Problem"},
                    {"required": ["reason"],
                     "properties": {"status": {"const": 410},
                                    "reason": {"enum": ["revealed", "deleted", "discarded",
                                                        "purged", "expired"]}},
                     "if": {"properties": {"reason": {"const": "revealed"}}},
                     "then": {"required": ["revealed_by", "revealed_at"]}}]}}},
            },
            "TooLarge": {
                "description": "The body (or the envelope in it) is larger than 64 KiB.",
                "content": {PROBLEM: {"schema": {"allOf": [
                    {"$ref": "#/components/schemas/Problem"},
                    {"properties": {"status": {"const": 413}}}]}}},
            },
            "RateLimited": {
                "description": "Too many attempts.",
                "headers": {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}},
                "content": {PROBLEM: {"schema": {"allOf": [
                    {"$ref": "#/components/schemas/Problem"},
                    {"properties": {"status": {"const": 429}}}]}}},
            },
            "Unavailable": {
                "description": "The store (or a replica it must wait for) did not answer; "
                               "nothing was half-done.",
                "headers": {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}},
                "content": {PROBLEM: {"schema": {"allOf": [
                    {"$ref": "#/components/schemas/Problem"},
                    {"properties": {"status": {"const": 503}}}]}}},
            },
        },
        "schemas": {
            # -- formats ---------------------------------------------------------------------
            "Id": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]{28}$",
                "description": "A request or secret id: a 6-character slot tag of the ticket, "
                               "then 22 characters of 128 random bits (canonical base64url: a "
                               "non-canonical last character is unknown).",
            },
            "Ticket": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            "Kind": {"type": "string", "enum": ["wordpress", "sftp", "other"]},
            "Envelope": {
                "type": "string",
                "pattern": ENVELOPE_PATTERN,
                "minLength": 41,
                "maxLength": 65536,
                "description": "Envelope v1 text form: `v1.` and base64url of nonce, "
                               "AES-256-GCM ciphertext and tag (at least 28 bytes). The body as "
                               "a whole is limited to 64 KiB too (413).",
            },
            "ManageToken": {"type": "string", "pattern": "^vm_[A-Za-z0-9_-]{43}$"},
            "Timestamp": {"type": "string", "format": "date-time",
                          "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"},
            "Email": {"type": "string", "pattern": EMAIL_PATTERN,
                      "description": "An e-mail address (compared in lower case)."},
            # -- problems --------------------------------------------------------------------
            "Problem": {
                "type": "object",
                "description": "RFC 9457 problem details.",
                "required": ["type", "title", "status", "detail"],
                "properties": {
                    "type": {"type": "string", "format": "uri"},
                    "title": {"type": "string"},
                    "status": {"type": "integer", "minimum": 400, "maximum": 599},
                    "detail": {"type": "string"},
                    "invalid_params": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "reason"],
                            "properties": {"name": {"type": "string"},
                                           "reason": {"type": "string"}},
                            "additionalProperties": False,
                        },
                    },
                    "reason": {"type": "string"},
                    "revealed_by": {"type": "string",
                                    "description": "The agent's name or e-mail."},
                    "revealed_at": {"oneOf": [{"$ref": "#/components/schemas/Timestamp"},
                                              {"type": "null"}]},
                },
                "additionalProperties": True,
            },
            # -- requests --------------------------------------------------------------------
            "NewRequest": {
                "type": "object",
                "required": ["ticket"],
                "properties": {
                    "ticket": {"$ref": "#/components/schemas/Ticket"},
                    "note": {"type": ["string", "null"], "maxLength": 500,
                             "description": "Shown to the customer on the link's page."},
                },
            },
            "CreatedRequest": {
                "type": "object",
                "required": ["id", "url", "ticket", "expires_at"],
                "properties": {
                    "id": {"$ref": "#/components/schemas/Id"},
                    "url": {"type": "string", "format": "uri",
                            "pattern": "/r/[A-Za-z0-9_-]{28}$",
                            "description": "The link, without the key fragment."},
                    "ticket": {"$ref": "#/components/schemas/Ticket"},
                    "expires_at": {"$ref": "#/components/schemas/Timestamp"},
                },
                "additionalProperties": False,
            },
            "RequestState": {
                "type": "object",
                "required": ["ticket", "state", "expires_at", "created_at"],
                "properties": {
                    "ticket": {"$ref": "#/components/schemas/Ticket"},
                    "state": {"enum": ["open", "submitted", "revealed"]},
                    "expires_at": {"$ref": "#/components/schemas/Timestamp"},
                    "created_at": {"$ref": "#/components/schemas/Timestamp"},
                    "secret_id": {"$ref": "#/components/schemas/Id"},
                    "note": {"type": "string"},
                },
                "additionalProperties": False,
            },
            "Submission": {
                "type": "object",
                "required": ["kind", "envelope"],
                "properties": {
                    "kind": {"$ref": "#/components/schemas/Kind"},
                    "envelope": {"$ref": "#/components/schemas/Envelope"},
                },
            },
            "FilledRequest": {
                "type": "object",
                "required": ["secret_id", "expires_at", "manage_token"],
                "properties": {
                    "secret_id": {"$ref": "#/components/schemas/Id"},
                    "expires_at": {"$ref": "#/components/schemas/Timestamp"},
                    "manage_token": {"$ref": "#/components/schemas/ManageToken"},
                },
                "additionalProperties": False,
            },
            # -- secrets ---------------------------------------------------------------------
            "NewSecret": {
                "type": "object",
                "required": ["ticket", "kind", "envelope"],
                "properties": {
                    "ticket": {"$ref": "#/components/schemas/Ticket"},
                    "kind": {"$ref": "#/components/schemas/Kind"},
                    "envelope": {"$ref": "#/components/schemas/Envelope"},
                    "ttl": {"type": ["integer", "null"], "minimum": 1, "maximum": 2592000,
                            "description": "Seconds, up to VAULT_MAX_TTL (default and most: 30 "
                                           "days); null or absent: VAULT_DEFAULT_TTL."},
                },
            },
            "CreatedSecret": {
                "type": "object",
                "required": ["id", "url", "expires_at", "manage_token"],
                "properties": {
                    "id": {"$ref": "#/components/schemas/Id"},
                    "url": {"type": "string", "format": "uri",
                            "pattern": "/s/[A-Za-z0-9_-]{28}$",
                            "description": "The link, without the key fragment."},
                    "expires_at": {"$ref": "#/components/schemas/Timestamp"},
                    "manage_token": {"$ref": "#/components/schemas/ManageToken"},
                },
                "additionalProperties": False,
            },
            "SecretMeta": {
                "type": "object",
                "required": ["id", "ticket", "kind", "state", "created_at", "expires_at"],
                "properties": {
                    "id": {"$ref": "#/components/schemas/Id"},
                    "ticket": {"$ref": "#/components/schemas/Ticket"},
                    "kind": {"$ref": "#/components/schemas/Kind"},
                    "state": {"enum": ["waiting", "revealed"]},
                    "created_at": {"$ref": "#/components/schemas/Timestamp"},
                    "expires_at": {"$ref": "#/components/schemas/Timestamp"},
                    "revealed_at": {"$ref": "#/components/schemas/Timestamp"},
                    "revealed_by": {"type": "string",
                                    "description": "The agent's name or e-mail."},
                    "request_id": {"$ref": "#/components/schemas/Id"},
                },
                "additionalProperties": False,
                "if": {"properties": {"state": {"const": "revealed"}}},
                "then": {"required": ["revealed_at", "revealed_by"]},
                "else": {"not": {"anyOf": [{"required": ["revealed_at"]},
                                           {"required": ["revealed_by"]}]}},
            },
            "Revealed": {
                "type": "object",
                "required": ["envelope", "kind", "ticket"],
                "properties": {
                    "envelope": {"$ref": "#/components/schemas/Envelope"},
                    "kind": {"$ref": "#/components/schemas/Kind"},
                    "ticket": {"$ref": "#/components/schemas/Ticket"},
                },
                "additionalProperties": False,
            },
            # -- tickets ---------------------------------------------------------------------
            "TicketView": {
                "type": "object",
                "required": ["ticket", "state", "assignee", "closed_at", "purged", "requests",
                             "secrets", "events"],
                "properties": {
                    "ticket": {"$ref": "#/components/schemas/Ticket"},
                    "state": {"enum": ["open", "closed"]},
                    "assignee": {"type": ["string", "null"]},
                    "closed_at": {"oneOf": [{"$ref": "#/components/schemas/Timestamp"},
                                            {"type": "null"}]},
                    "purged": {"type": "integer", "minimum": 0},
                    "requests": {"type": "array",
                                 "items": {"$ref": "#/components/schemas/TicketRequest"}},
                    "secrets": {"type": "array",
                                "items": {"$ref": "#/components/schemas/TicketSecret"}},
                    "events": {"type": "array",
                               "items": {"$ref": "#/components/schemas/AuditEvent"}},
                },
                "additionalProperties": False,
            },
            "TicketRequest": {
                "type": "object",
                "required": ["id", "state", "created_at", "expires_at", "created_by",
                             "secret_id", "note"],
                "properties": {
                    "id": {"$ref": "#/components/schemas/Id"},
                    "state": {"enum": ["open", "submitted", "revealed", "expired"]},
                    "created_at": {"oneOf": [{"$ref": "#/components/schemas/Timestamp"},
                                             {"type": "null"}]},
                    "expires_at": {"oneOf": [{"$ref": "#/components/schemas/Timestamp"},
                                             {"type": "null"}]},
                    "created_by": {"type": "string"},
                    "secret_id": {"oneOf": [{"$ref": "#/components/schemas/Id"},
                                            {"type": "null"}]},
                    "note": {"type": ["string", "null"]},
                },
                "additionalProperties": False,
            },
            "TicketSecret": {
                "type": "object",
                "required": ["id", "kind", "state", "created_at", "expires_at", "revealed_at",
                             "revealed_by", "request_id"],
                "properties": {
                    "id": {"$ref": "#/components/schemas/Id"},
                    "kind": {"$ref": "#/components/schemas/Kind"},
                    "state": {"enum": ["waiting", "revealed", "expired"]},
                    "created_at": {"oneOf": [{"$ref": "#/components/schemas/Timestamp"},
                                             {"type": "null"}]},
                    "expires_at": {"oneOf": [{"$ref": "#/components/schemas/Timestamp"},
                                             {"type": "null"}]},
                    "revealed_at": {"oneOf": [{"$ref": "#/components/schemas/Timestamp"},
                                              {"type": "null"}]},
                    "revealed_by": {"type": ["string", "null"]},
                    "request_id": {"oneOf": [{"$ref": "#/components/schemas/Id"},
                                             {"type": "null"}]},
                },
                "additionalProperties": False,
            },
            "AuditEvent": {
                "type": "object",
                "required": ["at", "event", "ticket", "id", "actor", "detail"],
                "properties": {
                    "at": {"oneOf": [{"$ref": "#/components/schemas/Timestamp"},
                                     {"type": "null"}]},
                    "event": {"type": "string"},
                    "ticket": {"type": ["string", "null"]},
                    "id": {"type": ["string", "null"]},
                    "actor": {"type": ["string", "null"]},
                    "detail": {"type": ["string", "null"]},
                },
                "additionalProperties": False,
            },
            "NewAssignee": {
                "type": "object",
                "required": ["agent"],
                "properties": {"agent": {"$ref": "#/components/schemas/Email"}},
            },
            "Assigned": {
                "type": "object",
                "required": ["ticket", "assignee", "known_agent"],
                "properties": {
                    "ticket": {"$ref": "#/components/schemas/Ticket"},
                    "assignee": {"type": "string", "description": "Lower-cased e-mail."},
                    "known_agent": {"type": "boolean",
                                    "description": "Whether the e-mail is a vault agent."},
                },
                "additionalProperties": False,
            },
            "Closed": {
                "type": "object",
                "required": ["ticket", "purged"],
                "properties": {
                    "ticket": {"$ref": "#/components/schemas/Ticket"},
                    "purged": {"type": "integer", "minimum": 0,
                               "description": "Secrets and open requests purged by this call."},
                },
                "additionalProperties": False,
            },
            "Reopened": {
                "type": "object",
                "required": ["ticket", "reopened"],
                "properties": {
                    "ticket": {"$ref": "#/components/schemas/Ticket"},
                    "reopened": {"type": "boolean"},
                },
                "additionalProperties": False,
            },
            # -- session ---------------------------------------------------------------------
            "Login": {
                "type": "object",
                "required": ["email", "password"],
                "properties": {
                    "email": {"type": "string", "description": "Anything else is a 401."},
                    "password": {"type": "string", "minLength": 1, "maxLength": 1024},
                    "totp": {"type": "string",
                             "description": "A one-time code, for agents with 2FA."},
                },
            },
            "Session": {
                "type": "object",
                "required": ["csrf_token", "agent"],
                "properties": {
                    "csrf_token": {"type": ["string", "null"],
                                   "description": "Send it as X-CSRF-Token with the cookie; "
                                                  "null for bearer tokens."},
                    "agent": {
                        "type": "object",
                        "required": ["email", "name", "role"],
                        "properties": {
                            "email": {"type": "string",
                                      "description": "The agent's e-mail, or the helpdesk "
                                                     "key's name."},
                            "name": {"type": "string"},
                            "role": {"enum": ["agent", "admin", "helpdesk"]},
                        },
                        "additionalProperties": False,
                    },
                },
                "additionalProperties": False,
            },
            # -- passkeys --------------------------------------------------------------------
            "PasskeyOptions": {
                "type": "object",
                "required": ["publicKey"],
                "properties": {"publicKey": {
                    "type": "object",
                    "description": "PublicKeyCredentialCreationOptionsJSON or "
                                   "PublicKeyCredentialRequestOptionsJSON (WebAuthn Level 3): "
                                   "`challenge`, `rpId` or `rp`, `userVerification`, ...",
                    "required": ["challenge"],
                    "properties": {"challenge": {"type": "string",
                                                 "pattern": "^[A-Za-z0-9_-]{43}$"}}}},
                "additionalProperties": False,
            },
            "PasskeySignIn": {
                "type": "object",
                "required": ["credential"],
                "properties": {"credential": {
                    "type": "object",
                    "description": "What navigator.credentials.get() answered, as "
                                   "AuthenticationResponseJSON (binary fields in base64url). "
                                   "Anything that is not a good one is a 401."}},
            },
            "NewPasskey": {
                "type": "object",
                "required": ["name", "credential"],
                "properties": {
                    "name": {"type": "string", "description": "1 to 64 printable characters."},
                    "credential": {
                        "type": "object",
                        "description": "What navigator.credentials.create() answered, as "
                                       "RegistrationResponseJSON (binary fields in base64url)."},
                },
            },
            "Passkey": {
                "type": "object",
                "required": ["id", "name", "created_at"],
                "properties": {
                    "id": {"type": "string", "pattern": "^pk_[0-9a-f]{12}$"},
                    "name": {"type": "string"},
                    "created_at": {"type": "integer",
                                   "description": "Milliseconds since the epoch."},
                },
                "additionalProperties": False,
            },
            # -- webhooks --------------------------------------------------------------------
            "HelpScoutConversation": {
                "type": "object",
                "description": (
                    "The conversation object Help Scout sends (`id`, `number`, `status`, "
                    "`assignee` or `owner` with `email`, `userUpdatedAt`, ...). The ticket is "
                    "`str(number)`, or the ticket last seen with `id`. Any JSON object is "
                    "accepted; only `convo.assigned` checks a field (the e-mail)."),
                "examples": [{"id": 123456, "number": 4242, "status": "closed"}],
            },
            "StandardEvent": {
                "description": (
                    "`{\"type\": \"ticket.closed\", \"timestamp\": \"<RFC 3339>\", "
                    "\"data\": {\"ticket\": \"12345\"}}`; `ticket.assigned` adds `data.agent` "
                    "(an e-mail). Known types: `ticket.closed`, `ticket.deleted`, "
                    "`ticket.reopened`, `ticket.assigned`; others are answered and ignored."),
                "anyOf": [
                    {
                        "type": "object",
                        "required": ["type", "data"],
                        "properties": {
                            "type": {"const": "ticket.assigned"},
                            "data": {
                                "type": "object",
                                "required": ["ticket", "agent"],
                                "properties": {
                                    "ticket": {"$ref": "#/components/schemas/Ticket"},
                                    "agent": {"$ref": "#/components/schemas/Email"},
                                },
                            },
                        },
                    },
                    {
                        "type": "object",
                        "required": ["data"],
                        "properties": {
                            "type": {"not": {"const": "ticket.assigned"}},
                            "data": {
                                "type": "object",
                                "required": ["ticket"],
                                "properties": {
                                    "ticket": {"$ref": "#/components/schemas/Ticket"},
                                },
                            },
                        },
                    },
                ],
                "examples": [{"type": "ticket.closed", "timestamp": "2026-01-02T03:04:05Z",
                              "data": {"ticket": "12345"}}],
            },
            "HelpScoutResult": {
                "type": "object",
                "properties": {
                    "event": {"type": "string"},
                    "action": {"enum": ["none", "purged", "reopened", "assigned", "ignored"]},
                    "ticket": {"$ref": "#/components/schemas/Ticket"},
                    "purged": {"type": "integer", "minimum": 0},
                    "assignee": {"type": ["string", "null"]},
                    "reason": {"type": "string"},
                    "duplicate": {"const": True},
                    "status": {"const": "in progress"},
                },
                "additionalProperties": False,
                "anyOf": [{"required": ["event", "action"]},
                          {"required": ["status", "duplicate"]}],
            },
            "StandardResult": {
                "type": "object",
                "properties": {
                    "type": {"type": ["string", "null"]},
                    "action": {"enum": ["none", "purged", "reopened", "assigned", "ignored"]},
                    "ticket": {"$ref": "#/components/schemas/Ticket"},
                    "purged": {"type": "integer", "minimum": 0},
                    "assignee": {"type": ["string", "null"]},
                    "reason": {"type": "string"},
                    "duplicate": {"const": True},
                    "status": {"const": "in progress"},
                },
                "additionalProperties": False,
                "anyOf": [{"required": ["type", "action", "ticket"]},
                          {"required": ["status", "duplicate"]}],
            },
            # -- operations ------------------------------------------------------------------
            "Readiness": {
                "type": "object",
                "required": ["status", "checks"],
                "properties": {
                    "status": {"enum": ["ok", "unavailable"]},
                    "checks": {
                        "type": "object",
                        "required": ["redis", "keyring"],
                        "properties": {"redis": {"enum": ["ok", "unavailable"]},
                                       "keyring": {"enum": ["ok", "unusable"]}},
                        "additionalProperties": False,
                    },
                    "identity_provider": {
                        "description": "With VAULT_OIDC_* set: whether the issuer answers. "
                                       "Named, never counted in `status`: an identity "
                                       "provider's outage leaves password login and reveals "
                                       "working.",
                        "type": "object",
                        "required": ["issuer", "status"],
                        "properties": {"issuer": {"type": "string"},
                                       "status": {"enum": ["ok", "unreachable"]}},
                        "additionalProperties": False,
                    },
                },
                "additionalProperties": False,
            },
        },
    },
}


@ops.get("/api/v1/openapi.json")
def openapi_document() -> Response:
    return jsonify(DOCUMENT)
