"""Rate limits counted inside the store's scripts keep flask-limiter's semantics.

The counters are the ones flask-limiter's engine (`limits`, fixed window on Redis) keeps: the
same key layout, the same window started by the first hit, the same refusal past the amount.
`limits` itself, pointed at vault's key prefix, reads and agrees with what vault counted.
"""

from __future__ import annotations

from typing import Any

from helpers import sealed
from limits import parse
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

ADDRESS = "127.0.0.1"  # the test client's


def submit(client: Any, ticket: str) -> Any:
    envelope, _ = sealed(ticket)
    return client.post("/api/v1/secrets", json={"ticket": ticket, "kind": "wordpress",
                                                "envelope": envelope})


def flask_limiters_view(redis_server: Any) -> FixedWindowRateLimiter:
    return FixedWindowRateLimiter(RedisStorage(redis_server.url, key_prefix="vault:{acct}:LIMITS"))


def test_flask_limiters_engine_reads_the_counter_vault_keeps(make_app, redis_server):
    client = make_app(ratelimit_submit="3/minute").test_client()
    strategy, item = flask_limiters_view(redis_server), parse("3/minute")
    assert [submit(client, "rl-1").status_code for _ in range(2)] == [201, 201]
    stats = strategy.get_window_stats(item, "submit", ADDRESS)
    assert stats.remaining == 1
    assert strategy.test(item, "submit", ADDRESS)
    # A hit counted by `limits` itself is one vault sees: the same counter.
    assert strategy.hit(item, "submit", ADDRESS)
    refused = submit(client, "rl-1")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert not strategy.test(item, "submit", ADDRESS)


def test_the_window_starts_at_the_first_hit_and_lasts_the_limits_period(make_app,
                                                                          redis_client):
    client = make_app(ratelimit_submit="5/hour").test_client()
    assert submit(client, "rl-2").status_code == 201
    key = f"vault:{{acct}}:LIMITS:LIMITER/submit/{ADDRESS}/5/1/hour"
    assert redis_client.get(key) == b"1"
    assert 3590 <= redis_client.ttl(key) <= 3600
    assert submit(client, "rl-2").status_code == 201
    assert redis_client.get(key) == b"2" and redis_client.ttl(key) <= 3600


def test_both_submission_routes_share_the_per_address_limit(make_app, make_agent):
    app = make_app(ratelimit_submit="2/minute")
    client = app.test_client()
    agent = make_agent("rl@example.com")
    rid = client.post("/api/v1/requests", json={"ticket": "rl-3"},
                      headers=agent.headers).get_json()["id"]
    assert submit(client, "rl-3").status_code == 201
    envelope, _ = sealed("rl-3")
    assert client.post(f"/api/v1/requests/{rid}/secret", json={
        "kind": "wordpress", "envelope": envelope}).status_code == 201
    again = client.post(f"/api/v1/requests/{rid}/secret", json={
        "kind": "wordpress", "envelope": envelope})
    assert again.status_code == 429 and again.get_json()["status"] == 429


def test_a_bad_submission_is_counted_and_limited_like_a_good_one(make_app):
    client = make_app(ratelimit_submit="2/minute").test_client()
    bad = {"ticket": "rl-4", "kind": "wordpress", "envelope": "not an envelope"}
    assert [client.post("/api/v1/secrets", json=bad).status_code for _ in range(2)] == [400, 400]
    assert client.post("/api/v1/secrets", json=bad).status_code == 429
    assert client.post("/api/v1/secrets", data=b"{", content_type="application/json"
                       ).status_code == 429


def test_several_windows_are_each_counted(make_app, redis_client):
    client = make_app(ratelimit_submit="3/minute;2/hour").test_client()
    assert [submit(client, "rl-5").status_code for _ in range(3)] == [201, 201, 429]
    # The hour's window refused the third: the minute's had let it through.
    assert redis_client.get(f"vault:{{acct}}:LIMITS:LIMITER/submit/{ADDRESS}/3/1/minute") == b"3"
    assert redis_client.get(f"vault:{{acct}}:LIMITS:LIMITER/submit/{ADDRESS}/2/1/hour") == b"3"


def test_a_reveal_counts_against_the_agent_who_authenticated(make_app, make_agent,
                                                               redis_client):
    app = make_app(ratelimit_reveal="2/minute")
    client = app.test_client()
    ann, bob = make_agent("ann@example.com"), make_agent("bob@example.com")
    missing = "/api/v1/secrets/" + "A" * 28 + "/reveal"
    assert [client.post(missing, headers=ann.headers).status_code for _ in range(3)] == \
        [404, 404, 429]
    assert client.post(missing, headers=bob.headers).status_code == 404  # his own window
    assert redis_client.get("vault:{acct}:LIMITS:LIMITER/reveal/ann@example.com/2/1/minute") \
        == b"3"
