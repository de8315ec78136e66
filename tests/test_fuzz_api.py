"""Property-based fuzzing of the whole HTTP API against its OpenAPI document (schemathesis 4).

Every operation is fuzzed with valid and invalid input, authenticated as a real agent (as an
admin on the admin-or-helpdesk routes); webhook deliveries whose headers are valid are signed for
real, so that their bodies reach the handlers. A stateful run then follows the document's links
(create, read, reveal, acknowledge, delete, close, reopen). Every check schemathesis has is on,
with the contract's statuses. A failure is a server bug or a wrong document, never something to
tune away. The server bugs earlier runs found are pinned below by plain regression tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import schemathesis
from harness import RedisServer, base_config
from helpers import sealed, standard_signature
from hypothesis import HealthCheck, settings
from schemathesis.core import NotSet
from schemathesis.core.parameters import ParameterLocation

from vault import create_app
from vault.api.openapi import DOCUMENT

AGENT_EMAIL = "fuzz-agent@example.com"
ADMIN_EMAIL = "fuzz-admin@example.com"
PASSWORD = "correct horse battery staple"
TOKENS = "TEST_FUZZ_BEARER_TOKENS"  # where the fixture leaves the tokens for the auth provider
# The routes docs/api.md gives to "admin or helpdesk key"; every other authenticated route is an
# agent's, and the agent's token is what a real caller sends there.
ADMIN_OPERATIONS = {"setAssignee", "closeTicket", "reopenTicket"}
HELPSCOUT = "/api/v1/webhooks/helpscout"
STANDARD = "/api/v1/webhooks/standard"
SIDEBAR = "/integrations/helpscout/sidebar"

_BASE = base_config("redis://unused")
HELPSCOUT_SECRET = _BASE["helpscout_secret"].split(",")[0]
SIDEBAR_SECRET = _BASE["helpscout_app_secret"]
STANDARD_WEBHOOK_SECRET = _BASE["webhook_secret"]
STANDARD_KEY = base64.b64decode(STANDARD_WEBHOOK_SECRET.removeprefix("whsec_"))

# Answers to valid input whose target is in the wrong state: schemathesis's defaults plus 410,
# which the contract gives to what is revealed, deleted, purged or expired as it gives 404 to
# what is unknown and 409 to a closed ticket.
POSITIVE_STATUSES = ["2xx", "401", "403", "404", "409", "410", "429", "5xx"]
# Refusals of invalid input: schemathesis's defaults plus 413 (over 64 KiB is a refusal).
NEGATIVE_STATUSES = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428",
                     "429", "5xx"]
MAX_EXAMPLES = 50  # per operation and phase; the whole file stays well under 90 s on 2 cores
STATEFUL_SCENARIOS = 80
STATEFUL_STEPS = 10

CONFIG = schemathesis.Config.from_dict({
    "seed": 20260515,
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True,
                   "database": "none"},
    "checks": {
        "enabled": True,
        "positive_data_acceptance": {"expected-statuses": POSITIVE_STATUSES},
        "negative_data_rejection": {"expected-statuses": NEGATIVE_STATUSES},
    },
})
# One app serves every example of a test on purpose (state accumulates as on a real server), so
# the function-scoped fixture health check does not apply; how hard generation works is
# schemathesis's business, and a slow example is not a finding here.
HYPOTHESIS = settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture,
                                             HealthCheck.too_slow, HealthCheck.filter_too_much,
                                             HealthCheck.data_too_large])


def provision(app: Any) -> None:
    """An agent and an admin with an API token each, for the auth provider."""
    accounts = app.extensions["vault"].accounts
    accounts.add_agent(AGENT_EMAIL, PASSWORD, name="Fuzz Agent")
    accounts.add_agent(ADMIN_EMAIL, PASSWORD, name="Fuzz Admin", admin=True)
    app.config[TOKENS] = {"agent": accounts.create_token(AGENT_EMAIL)[0],
                          "admin": accounts.create_token(ADMIN_EMAIL)[0]}


@pytest.fixture
def fuzz_app(redis_client: redis.Redis, redis_server: RedisServer) -> Iterator[Any]:
    """A production-configured app on the (emptied) test Redis, without rate limits."""
    app = create_app(base_config(redis_server.url, ratelimit_enabled=False, log_level="WARNING"))
    provision(app)
    yield app
    app.extensions["vault"].close()


def answered(app: Any) -> dict[tuple[str, str], set[int]]:
    """{(method, Flask rule): statuses} the app has answered, from its own request counter."""
    seen: dict[tuple[str, str], set[int]] = {}
    for metric in app.extensions["vault"].metrics.requests.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.value:
                key = (sample.labels["method"], sample.labels["route"])
                seen.setdefault(key, set()).add(int(sample.labels["status"]))
    return seen


def flask_rule(path: str) -> str:
    return path.replace("{", "<").replace("}", ">")


class BearerToken:
    """Valid credentials on every operation that declares security (a schemathesis provider).

    Registered with `refresh_interval=None`: each test builds a new app with new tokens. Cases
    that negate the credentials on purpose are left alone by schemathesis.
    """

    def get(self, case: schemathesis.Case[Any], ctx: schemathesis.AuthContext) -> str | None:
        definition = ctx.operation.definition.raw
        if not definition.get("security"):
            return None
        assert ctx.app is not None, "the schema is loaded from the app (from_wsgi)"
        tokens: dict[str, str] = ctx.app.config[TOKENS]
        return tokens["admin" if definition["operationId"] in ADMIN_OPERATIONS else "agent"]

    def set(self, case: schemathesis.Case[Any], data: str, ctx: schemathesis.AuthContext) -> None:
        case.headers["Authorization"] = f"Bearer {data}"


def body_bytes(body: Any) -> bytes:
    """The bytes of a generated body, as the JSON serializer sends them."""
    if isinstance(body, NotSet):
        return b""
    if isinstance(body, bytes):
        return body  # a malformed-payload probe, sent as it is
    return json.dumps(body).encode()



def signed(case: schemathesis.Case[Any]) -> dict[str, Any]:
    """Call arguments that sign a webhook delivery over the exact bytes sent.

    Only when the case's headers are valid: a case invalid in its headers must stay invalid
    (and be refused), not be made valid by signing it.
    """
    path = case.operation.path
    if path not in (HELPSCOUT, STANDARD, SIDEBAR):
        return {}
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER):
        return {}
    raw = body_bytes(case.body)
    if path in (HELPSCOUT, SIDEBAR):
        secret = HELPSCOUT_SECRET if path == HELPSCOUT else SIDEBAR_SECRET
        digest = hmac.new(secret.encode(), raw, hashlib.sha1).digest()
        headers = {"X-HelpScout-Signature": base64.b64encode(digest).decode()}
    else:
        msg_id = str(case.headers.get("webhook-id") or "msg_fuzz")
        stamp = int(time.time())
        try:
            signature = standard_signature(STANDARD_WEBHOOK_SECRET, msg_id, stamp, raw)
        except UnicodeDecodeError:
            # A malformed-payload probe that is not UTF-8: the reference library signs text
            # only, so these bytes are signed by hand, by the same scheme (HMAC-SHA256 of
            # "id.timestamp.body" with the key), to reach the parsing behind the signature.
            digest = hmac.new(STANDARD_KEY, f"{msg_id}.{stamp}.".encode() + raw,
                              hashlib.sha256).digest()
            signature = "v1," + base64.b64encode(digest).decode()
        headers = {"webhook-id": msg_id, "webhook-timestamp": str(stamp),
                   "webhook-signature": signature}
    return {"data": raw, "headers": headers}


# -- every operation, one by one -------------------------------------------------------------------

@pytest.fixture
def fuzz_schema(fuzz_app: Any) -> Iterator[Any]:
    """The document as the app serves it, bound to the app; afterwards, proof of reach.

    Valid credentials and signatures must have got past authentication: every operation that
    declares security answered something other than 401 at least once, and each webhook a 200.
    """
    yield schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app, config=CONFIG)
    seen = answered(fuzz_app)
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if operation.get("security"):
                statuses = seen.get((method.upper(), flask_rule(path)), set())
                assert statuses - {401}, f"{method.upper()} {path} never got past 401"
    for path in (HELPSCOUT, STANDARD, SIDEBAR):
        assert 200 in seen.get(("POST", path), set()), f"no signed delivery reached {path}"


schema = schemathesis.pytest.from_fixture("fuzz_schema")
schema.auth(refresh_interval=None)(BearerToken)


@schema.parametrize()
@HYPOTHESIS
def test_api_conforms_to_its_document(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(**signed(case))


# -- server bugs the fuzzer found once, pinned ------------------------------------------------------

class FloatTtlRejected(AssertionError):
    """POST /api/v1/secrets refused a valid integer `ttl` written as a JSON float (815.0)."""


def test_integral_float_ttl_is_accepted(client: Any) -> None:
    envelope, _ = sealed("1001")
    rv = client.post("/api/v1/secrets", data=json.dumps(
        {"ticket": "1001", "kind": "wordpress", "envelope": envelope, "ttl": 815.0}),
        content_type="application/json")
    if rv.status_code == 400 and rv.get_json()["invalid_params"][0]["name"] == "ttl":
        raise FloatTtlRejected(rv.get_json()["detail"])
    assert rv.status_code == 201


class AllowHeaderMissing(AssertionError):
    """A 405 answer without the Allow header RFC 9110 requires."""


def test_undeclared_method_is_405_with_allow(client: Any) -> None:
    for path, item in DOCUMENT["paths"].items():
        url = path.replace("{ticket}", "1001").replace("{request_id}", "A" * 28).replace(
            "{secret_id}", "A" * 28)
        rv = client.open(url, method="PATCH")  # no vault route has PATCH
        assert rv.status_code == 405, path
        documented = {m.upper() for m in item}
        allowed = {m.strip() for m in rv.headers.get("Allow", "").split(",") if m.strip()}
        if not documented <= allowed:
            raise AllowHeaderMissing(f"PATCH {url}: Allow {sorted(allowed)}")


class UnexpectedRedirect(AssertionError):
    """A 3xx: vault never redirects by itself (docs/api.md, "Conventions")."""


def test_doubled_slashes_are_not_redirected(client: Any) -> None:
    envelope, _ = sealed("1001")
    for method, url in [("POST", "/api/v1//secrets"), ("GET", "/api/v1//openapi.json"),
                        ("GET", f"/api/v1/secrets//{'A' * 28}")]:
        rv = client.open(url, method=method, headers={"Host": "elsewhere.example"},
                         json={"ticket": "1001", "kind": "wordpress", "envelope": envelope})
        if 300 <= rv.status_code < 400:
            raise UnexpectedRedirect(f"{method} {url}: {rv.status_code} to "
                                     f"{rv.headers.get('Location')}")
        assert rv.status_code == 404 and rv.mimetype == "application/problem+json", url


# -- stateful: chains along the document's links --------------------------------------------------

def test_stateful_links(fuzz_app: Any, redis_client: redis.Redis) -> None:
    loaded = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app, config=CONFIG)
    loaded.auth(refresh_interval=None)(BearerToken)

    class Machine(loaded.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Every scenario starts from the same store: what a step can link to depends on
            # earlier answers, and Hypothesis replays scenarios (state carried over from another
            # scenario would make them draw differently).
            redis_client.flushdb()
            provision(fuzz_app)

        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            return signed(case)

    Machine.run(settings=settings(HYPOTHESIS, max_examples=STATEFUL_SCENARIOS,
                                  stateful_step_count=STATEFUL_STEPS))
    seen = answered(fuzz_app)
    # The links were followed with real ids and tokens, all the way to the end of a secret.
    for method, rule, status in [
            ("POST", "/api/v1/secrets", 201), ("POST", "/api/v1/requests", 201),
            ("POST", "/api/v1/requests/<request_id>/secret", 201),
            ("GET", "/api/v1/secrets/<secret_id>", 200),
            ("POST", "/api/v1/secrets/<secret_id>/reveal", 200),
            ("POST", "/api/v1/secrets/<secret_id>/ack", 204),
            ("DELETE", "/api/v1/secrets/<secret_id>", 204)]:
        assert status in seen.get((method, rule), set()), f"{method} {rule} never {status}"
