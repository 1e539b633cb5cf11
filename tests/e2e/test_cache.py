"""The response cache through real gunicorn: the fake upstream records every call it gets,
so "answered from the cache" means the upstream never saw the request.

Memory (one worker, so every request meets the same LRU), then Redis shared by two
instances, then Redis cut off through a relay.
"""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from tests.relay import TcpProxy, host_port
from tests.support import (
    ADMIN_KEY,
    OTHER_KEY,
    REDIS_TEST_URL,
    TEAM_KEY,
    admin_headers,
    base_config,
    chat_body,
    redis_namespace,
    start_gunicorn,
    wait_ready,
)

CHAT = "/api/v1/chat/completions"
PLAIN_CHAT = "/v1/chat/completions"
ADMIN = admin_headers()


def cache_config(fake_url: str, **cache) -> dict:
    config = base_config(fake_url)
    config["cache"] = {"ttl_s": 60, "max_entries": 100, **cache}
    for key in config["keys"]:
        key["cache"] = True
    config["models"].append(
        {"name": "embed", "targets": [{"provider": "fake", "model": "emb"}], "cache": True}
    )
    return config


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.headers["Connection"] = "close"
    return session


def post(url: str, body: dict, key: str = TEAM_KEY, path: str = CHAT, **headers):
    rid = uuid.uuid4().hex
    with http() as s:
        resp = s.post(
            f"{url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {key}", "X-Request-ID": rid, **headers},
            timeout=30,
        )
    resp.rid = rid
    return resp


def seen(fake, resp: requests.Response) -> bool:
    """Whether the upstream was called for this response's request."""
    return bool(fake.requests(resp.rid))


def sse_data(resp: requests.Response) -> list[dict]:
    events = [line[6:] for line in resp.text.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]", resp.text
    import json

    return [json.loads(e) for e in events[:-1]]


def unique(text: str = "hello") -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def server(fake_upstream, tmp_path_factory):
    srv = start_gunicorn(
        tmp_path_factory.mktemp("cache"),
        cache_config(fake_upstream.url, ttl_s=2),
        env={"FACADE_ADMIN_KEY": ADMIN_KEY},
    )
    yield srv
    assert srv.stop() == 0


def test_a_second_identical_request_never_reaches_the_upstream(server, fake_upstream):
    body = chat_body(unique(), temperature=0)
    first = post(server.url, body)
    assert first.status_code == 200 and first.headers["X-Cache"] == "miss"
    assert seen(fake_upstream, first)
    again = post(server.url, body)
    assert again.status_code == 200 and again.headers["X-Cache"] == "hit"
    assert not seen(fake_upstream, again)
    was, now = first.json()["data"], again.json()["data"]
    assert now["choices"] == was["choices"]
    assert was["metrics"]["cache_hit"] is False and was["metrics"]["cost_usd"] > 0
    assert now["metrics"]["cache_hit"] is True and now["metrics"]["cost_usd"] == 0
    for name in ("input_tokens", "output_tokens", "total_tokens", "provider", "upstream_model"):
        assert now["metrics"][name] == was["metrics"][name], name
    # `user` and `stream_options` are not part of the identity; the plain route shares it.
    plain = post(server.url, {**body, "user": "someone-else"}, path=PLAIN_CHAT)
    assert plain.headers["X-Cache"] == "hit" and not seen(fake_upstream, plain)
    assert plain.json()["choices"] == was["choices"]


def test_a_different_body_or_key_is_a_miss(server, fake_upstream):
    body = chat_body(unique(), model="gpt-test")
    assert post(server.url, body).headers["X-Cache"] == "miss"
    for other in (
        {**body, "temperature": 0.5},
        {**body, "messages": [{"role": "user", "content": unique()}]},
        {**body, "max_tokens": 7},
    ):
        resp = post(server.url, other)
        assert resp.status_code == 200 and resp.headers["X-Cache"] == "miss"
        assert seen(fake_upstream, resp)
    # Another key never meets this key's entries (scope: key).
    resp = post(server.url, body, key=OTHER_KEY)
    assert resp.status_code == 200 and resp.headers["X-Cache"] == "miss"
    assert seen(fake_upstream, resp)
    assert post(server.url, body, key=OTHER_KEY).headers["X-Cache"] == "hit"


def test_an_entry_expires_after_its_ttl(server, fake_upstream):
    body = chat_body(unique())
    assert post(server.url, body).headers["X-Cache"] == "miss"
    assert post(server.url, body).headers["X-Cache"] == "hit"
    time.sleep(2.5)  # the server's ttl_s is 2
    late = post(server.url, body)
    assert late.headers["X-Cache"] == "miss" and seen(fake_upstream, late)


def test_no_cache_skips_the_lookup_and_no_store_skips_both(server, fake_upstream):
    body = chat_body(unique())
    assert post(server.url, body).headers["X-Cache"] == "miss"
    fresh = post(server.url, body, **{"Cache-Control": "no-cache"})
    assert fresh.status_code == 200 and fresh.headers["X-Cache"] == "skip"
    assert seen(fake_upstream, fresh)
    # no-cache still stores: a first request with it fills the cache for the next.
    other = chat_body(unique())
    assert seen(fake_upstream, post(server.url, other, **{"Cache-Control": "no-cache"}))
    assert post(server.url, other).headers["X-Cache"] == "hit"
    # no-store neither reads (the entry above exists) nor writes.
    resp = post(server.url, body, **{"Cache-Control": "no-store"})
    assert resp.headers["X-Cache"] == "skip" and seen(fake_upstream, resp)
    third = chat_body(unique())
    assert seen(fake_upstream, post(server.url, third, **{"Cache-Control": "no-store"}))
    assert post(server.url, third).headers["X-Cache"] == "miss"


def test_a_stream_replays_a_cached_answer_with_its_usage(server, fake_upstream):
    body = chat_body(unique() + " [[fake tokens=7]]")
    whole = post(server.url, body)
    assert whole.headers["X-Cache"] == "miss"
    text = whole.json()["data"]["choices"][0]["message"]["content"]
    streamed = post(server.url, {**body, "stream": True, "stream_options": {"include_usage": True}})
    assert streamed.status_code == 200 and streamed.headers["X-Cache"] == "hit"
    assert streamed.headers["Content-Type"].startswith("text/event-stream")
    assert not seen(fake_upstream, streamed)
    chunks = [e["data"] for e in sse_data(streamed)]
    got = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    assert got == text
    last = chunks[-1]
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 7
    assert last["metrics"]["cache_hit"] is True and last["metrics"]["cost_usd"] == 0
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_a_streamed_answer_is_stored_once_complete_and_served_whole(server, fake_upstream):
    body = chat_body(unique() + " [[fake tokens=6]]")
    first = post(server.url, {**body, "stream": True}, path=PLAIN_CHAT)
    assert first.headers["X-Cache"] == "miss"
    text = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in sse_data(first) if c["choices"]
    )
    whole = post(server.url, body)
    assert whole.headers["X-Cache"] == "hit" and not seen(fake_upstream, whole)
    data = whole.json()["data"]
    assert data["choices"][0]["message"]["content"] == text
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["metrics"]["output_tokens"] == 6 and data["usage"]["completion_tokens"] == 6


@pytest.mark.parametrize(
    "fault, stream",
    [("status=500", False), ("badjson", False), ("cut=2", True), ("midstream=2", True)],
)
def test_a_failed_or_cut_off_answer_is_never_cached(server, fake_upstream, fault, stream):
    body = chat_body(f"{unique()} [[fake {fault}]]", stream=stream)
    for _ in range(2):
        resp = post(server.url, body)
        assert resp.headers["X-Cache"] == "miss"
        assert seen(fake_upstream, resp)


def test_embeddings_are_cached_by_model(server, fake_upstream):
    body = {"model": "embed", "input": [unique("doc")]}
    first = post(server.url, body, path="/api/v1/embeddings")
    assert first.status_code == 200 and first.headers["X-Cache"] == "miss"
    for path in ("/api/v1/embeddings", "/v1/embeddings"):
        resp = post(server.url, body, path=path)
        assert resp.status_code == 200 and resp.headers["X-Cache"] == "hit"
        assert not seen(fake_upstream, resp)
        data = resp.json().get("data")
        vectors = data["data"] if isinstance(data, dict) else data
        assert vectors == first.json()["data"]["data"]


def test_hits_count_against_rpm_but_not_tpm_or_budget(server, fake_upstream):
    with http() as s:
        created = s.post(
            f"{server.url}/api/v1/admin/keys",
            json={"name": "cached", "models": ["*"], "rpm": 100, "cache": True},
            headers=ADMIN,
        ).json()["data"]
    assert created["cache"] is True
    key = created["key"]
    body = chat_body(unique(), max_tokens=50)
    miss = post(server.url, body, key=key)
    assert miss.headers["X-Cache"] == "miss"
    with http() as s:
        resp = s.patch(
            f"{server.url}/api/v1/admin/keys/{created['id']}",
            json={"tpm": 1, "budget_usd": 0},
            headers=ADMIN,
        )
        assert resp.status_code == 200 and resp.json()["data"]["cache"] is True
    refused = post(server.url, chat_body(unique(), max_tokens=50), key=key)
    assert refused.status_code == 429
    hit = post(server.url, body, key=key)
    assert hit.status_code == 200 and hit.headers["X-Cache"] == "hit"
    # The window holds the miss and the hit: with an rpm of 3 one more hit fits, not two.
    with http() as s:
        s.patch(f"{server.url}/api/v1/admin/keys/{created['id']}", json={"rpm": 3}, headers=ADMIN)
    assert post(server.url, body, key=key).status_code == 200
    over = post(server.url, body, key=key)
    assert over.status_code == 429
    assert over.json()["data"]["error"]["type"] == "rate_limit_exceeded"
    assert "X-Cache" not in over.headers
    # The usage report tells the hits apart: cost only for the miss.
    time.sleep(0.6)  # the usage writer flushes every 0.25 s
    with http() as s:
        rows = s.get(
            f"{server.url}/api/v1/admin/usage", params={"key_id": created["id"]}, headers=ADMIN
        ).json()["data"]["rows"]
    assert [(r["requests"], r["cache_hits"]) for r in rows] == [(3, 2)]
    assert rows[0]["cost_usd"] == pytest.approx(miss.json()["data"]["metrics"]["cost_usd"])
    # The dashboard's per-model report shows the hit rate.
    with http() as s:
        models = s.get(f"{server.url}/api/v1/admin/usage/models", headers=ADMIN).json()["data"]
    gpt = next(r for r in models["rows"] if r["model"] == "gpt-test")
    assert gpt["cache_hits"] >= 2 and 0 < gpt["cache_hit_rate"] < 1


def test_cache_metrics_count_results_and_saved_dollars(server, fake_upstream):
    body = chat_body(unique())
    cost = post(server.url, body).json()["data"]["metrics"]["cost_usd"]
    before = scrape(server.url)
    post(server.url, body)
    post(server.url, body, **{"Cache-Control": "no-cache"})
    after = scrape(server.url)
    for result, n in (("hit", 1), ("miss", 0), ("skip", 1)):
        name = f'facade_cache_requests_total{{result="{result}"}}'
        assert after.get(name, 0) - before.get(name, 0) == n, result
    saved = after["facade_cache_saved_usd_total"] - before.get("facade_cache_saved_usd_total", 0)
    assert saved == pytest.approx(cost)


def scrape(url: str) -> dict[str, float]:
    with http() as s:
        text = s.get(f"{url}/metrics", timeout=10).text
    values = {}
    for line in text.splitlines():
        if line.startswith("facade_cache_"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def wait_stored(prefix: str, entries: int) -> None:
    """Redis entries are written a few milliseconds after their answer went out."""
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        deadline = time.monotonic() + 5
        while client.zcard(f"{prefix}cache:index") < entries:
            assert time.monotonic() < deadline, "the answer was never stored in Redis"
            time.sleep(0.01)
    finally:
        client.close()


def test_redis_shares_entries_between_instances(fake_upstream, tmp_path):
    with redis_namespace() as (redis_url, prefix):
        env = {"FACADE_REDIS_URL": redis_url, "FACADE_REDIS_PREFIX": prefix}
        config = cache_config(fake_upstream.url)
        a = start_gunicorn(tmp_path, config, env=env, wait=False)
        b = start_gunicorn(tmp_path, config, env=env, wait=False)
        try:
            wait_ready(a)
            wait_ready(b)
            body = chat_body(unique())
            stored = post(a.url, body)
            assert stored.headers["X-Cache"] == "miss"
            wait_stored(prefix, 1)
            hit = post(b.url, {**body, "stream": True})
            assert hit.status_code == 200 and hit.headers["X-Cache"] == "hit"
            assert not seen(fake_upstream, hit)
            text = stored.json()["data"]["choices"][0]["message"]["content"]
            chunks = sse_data(hit)
            assert (
                "".join(c["data"]["choices"][0]["delta"].get("content") or "" for c in chunks)
                == text
            )
            # The other key still misses in the shared store.
            assert post(b.url, body, key=OTHER_KEY).headers["X-Cache"] == "miss"
        finally:
            assert a.stop() == 0
            assert b.stop() == 0


def test_a_redis_outage_makes_the_cache_a_miss_never_an_error(fake_upstream, tmp_path):
    proxy = TcpProxy(host_port(REDIS_TEST_URL))
    proxy.start()
    with redis_namespace() as (_, prefix):
        env = {
            "FACADE_REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0",
            "FACADE_REDIS_PREFIX": prefix,
        }
        server = start_gunicorn(tmp_path, cache_config(fake_upstream.url), env=env)
        try:
            body = chat_body(unique())
            assert post(server.url, body).headers["X-Cache"] == "miss"
            wait_stored(prefix, 1)
            assert post(server.url, body).headers["X-Cache"] == "hit"
            proxy.stop()
            for _ in range(5):
                started = time.monotonic()
                resp = post(server.url, body)
                assert resp.status_code == 200 and resp.headers["X-Cache"] == "miss"
                assert seen(fake_upstream, resp)
                assert time.monotonic() - started < 3
            streamed = post(server.url, {**body, "stream": True})
            assert streamed.status_code == 200 and sse_data(streamed)
            proxy.start()
            deadline = time.monotonic() + 20
            while post(server.url, body).headers["X-Cache"] != "hit":
                assert time.monotonic() < deadline, "the cache never came back with Redis"
                time.sleep(0.5)
        finally:
            server.stop()
            proxy.stop()


def test_the_responses_routes_share_the_pipelines_cache(server, fake_upstream):
    body = {"model": "gpt-test", "input": unique("respond")}
    first = post(server.url, body, path="/v1/responses")
    assert first.status_code == 200 and first.headers["X-Cache"] == "miss"
    text = first.json()["output_text"]
    again = post(server.url, {**body, "store": False}, path="/v1/responses")
    assert again.status_code == 200 and again.headers["X-Cache"] == "hit"
    assert not seen(fake_upstream, again)
    assert again.json()["output_text"] == text and again.json()["id"] != first.json()["id"]
    enveloped = post(server.url, body, path="/api/v1/responses")
    assert enveloped.headers["X-Cache"] == "hit" and enveloped.json()["data"]["output_text"] == text
    streamed = post(server.url, {**body, "stream": True}, path="/v1/responses")
    assert streamed.status_code == 200 and streamed.headers["X-Cache"] == "hit"
    assert not seen(fake_upstream, streamed)
    assert '"response.completed"' in streamed.text and text.split()[0] in streamed.text


def test_the_messages_route_is_cached_apart_from_chat(server, fake_upstream):
    text = unique("message")
    body = {"model": "gpt-test", "max_tokens": 50, "messages": [{"role": "user", "content": text}]}
    first = post(server.url, body, path="/v1/messages")
    assert first.status_code == 200 and first.headers["X-Cache"] == "miss"
    again = post(server.url, body, path="/v1/messages")
    assert again.status_code == 200 and again.headers["X-Cache"] == "hit"
    assert not seen(fake_upstream, again)
    assert again.json()["content"] == first.json()["content"]
    streamed = post(server.url, {**body, "stream": True}, path="/v1/messages")
    assert streamed.headers["X-Cache"] == "hit" and "message_stop" in streamed.text
    # The same question through chat is another entry: the Messages body is part of the name.
    chat = post(server.url, chat_body(text, max_tokens=50))
    assert chat.headers["X-Cache"] == "miss"


def test_a_hit_takes_one_of_the_keys_parallel_slots(server, fake_upstream):
    import threading

    with http() as s:
        created = s.post(
            f"{server.url}/api/v1/admin/keys",
            json={"name": "one-at-a-time", "models": ["*"], "max_parallel": 1, "cache": True},
            headers=ADMIN,
        ).json()["data"]
    key = created["key"]
    body = chat_body(unique())
    assert post(server.url, body, key=key).headers["X-Cache"] == "miss"
    slow = threading.Thread(
        target=post, args=(server.url, chat_body(unique() + " [[fake slow=1.5]]"), key)
    )
    slow.start()
    try:
        time.sleep(0.5)  # the slow request holds the key's only slot
        busy = post(server.url, body, key=key)
        assert busy.status_code == 429 and "parallel" in busy.json()["message"]
    finally:
        slow.join()
    # The slot is given back (the entry itself may have expired by now: the TTL here is 2 s).
    assert post(server.url, body, key=key).status_code == 200
