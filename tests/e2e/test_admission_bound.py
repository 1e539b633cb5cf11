"""The admission bound is a bound: against an upstream that bills one token per 4 bytes of the
body it receives plus the whole output cap (`n` times), settled spend never passes a budget and
settled tokens never pass tpm, with 20 requests of each shape at once through real gunicorn.

The shapes are the ones that broke the old estimate: `n: 128`, 128 long tools, a 900 KB
`file` part, a large `response_format` schema, CJK text. The model costs $1000 per 1M tokens
and caps output at 100 tokens, so one request costs dollars and a budget covers a few.
"""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests

from tests.support import (
    ADMIN_KEY,
    admin_headers,
    base_config,
    pg_database,
    redis_namespace,
    start_gunicorn,
    wait_ready,
)

ADMIN = admin_headers()
KEYS = "/api/v1/admin/keys"
CHAT = "/api/v1/chat/completions"
PRICE = 1000.0  # dollars per 1M tokens, input and output
MAX_OUTPUT = 100
CONCURRENT = 20


def user(content) -> dict:
    return {"model": "dear", "messages": [{"role": "user", "content": content}]}


def shapes() -> dict[str, dict]:
    tools = [
        {
            "type": "function",
            "function": {
                "name": f"tool_{i}",
                "description": f"tool {i} " + "does a thing with many words " * 230,
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            },
        }
        for i in range(128)
    ]
    schema = {
        "type": "object",
        "properties": {
            f"field_{i}": {"type": "string", "description": "a field of the answer " * 9}
            for i in range(4000)
        },
    }
    document = "data:application/pdf;base64," + "JVBERi0xLjcK" * 75_000  # 900 KB
    return {
        "n128": {**user("hi"), "n": 128, "max_tokens": 100},
        "tools": {**user("pick a tool"), "tools": tools},  # no cap: the model's 100
        "file": {
            **user(
                [
                    {"type": "text", "text": "summarize"},
                    {"type": "file", "file": {"filename": "a.pdf", "file_data": document}},
                ]
            ),
            "max_tokens": 100,
        },
        "schema": {
            **user("fill it"),
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "big", "schema": schema},
            },
        },
        "cjk": {**user("日本語の文章を要約してください。" * 18_000), "max_tokens": 100},
    }


SHAPES = shapes()


def billed_tokens(body: dict) -> int:
    """What the fake bills for one request, near enough to size budgets (from the body sent)."""
    size = len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
    return math.ceil(size / 4) + body.get("n", 1) * body.get("max_tokens", MAX_OUTPUT)


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.headers["Connection"] = "close"
    return session


def bound_config(fake_url: str) -> dict:
    config = base_config(fake_url)
    config["models"].append(
        {
            "name": "dear",
            "targets": [{"provider": "fake", "model": "bill+bill4"}],
            "input_cost_per_1m": PRICE,
            "output_cost_per_1m": PRICE,
            "max_output_tokens": MAX_OUTPUT,
            "context_window": 1_000_000,
        }
    )
    config["models"].append(
        {
            "name": "dear-embed",
            "targets": [{"provider": "fake", "model": "emb+bill4"}],
            "input_cost_per_1m": PRICE,
        }
    )
    config["limits"]["max_body_bytes"] = 2_000_000
    config["providers"][0]["timeout_s"] = {"connect": 5, "read": 60}
    return config


@pytest.fixture(scope="module")
def server(fake_upstream, tmp_path_factory):
    config = bound_config(fake_upstream.url)
    srv = start_gunicorn(
        tmp_path_factory.mktemp("bound"), config, workers=2, env={"FACADE_ADMIN_KEY": ADMIN_KEY}
    )
    yield srv
    assert srv.stop() == 0


def create_key(url: str, **fields) -> dict:
    with http() as s:
        resp = s.post(
            f"{url}{KEYS}", json={"name": "bound", "models": ["*"], **fields}, headers=ADMIN
        )
    assert resp.status_code == 201, resp.text
    return resp.json()["data"]


def settled_view(url: str, key_id: str) -> dict:
    deadline = time.monotonic() + 20
    while True:
        with http() as s:
            view = s.get(f"{url}{KEYS}/{key_id}", headers=ADMIN, timeout=10).json()["data"]
        if view["reserved_usd"] == 0 or time.monotonic() > deadline:
            return view
        time.sleep(0.1)


def usage_row(url: str, key_id: str, requests_: int) -> dict:
    """The key's usage report row, once the workers have written `requests_` requests."""
    today = datetime.now(UTC).date().isoformat()
    deadline = time.monotonic() + 20
    while True:
        with http() as s:
            rows = s.get(
                f"{url}/api/v1/admin/usage?from={today}&to={today}&key_id={key_id}",
                headers=ADMIN,
                timeout=10,
            ).json()["data"]["rows"]
        if (rows and rows[0]["requests"] >= requests_) or time.monotonic() > deadline:
            assert len(rows) == 1, rows
            return rows[0]
        time.sleep(0.1)


def burst(urls: str | list[str], key: str, body: dict, path: str = CHAT) -> list[requests.Response]:
    """CONCURRENT requests at once, spread over the instances given."""
    urls = [urls] if isinstance(urls, str) else urls
    data = json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def post(i: int) -> requests.Response:
        with http() as s:
            url = urls[i % len(urls)]
            return s.post(f"{url}{path}", data=data, headers=headers, timeout=120)

    with ThreadPoolExecutor(CONCURRENT) as pool:
        return list(pool.map(post, range(CONCURRENT)))


@pytest.mark.parametrize("shape", list(SHAPES))
def test_settled_spend_never_passes_a_total_budget(server, shape, capsys):
    body = SHAPES[shape]
    # "A few" requests as the fake bills them; CJK reserves 4x its bill (a byte a token).
    few = 5 if shape == "cjk" else 3.5
    budget = round(few * billed_tokens(body) * PRICE / 1e6, 2)
    key = create_key(server.url, budget_usd=budget, budget_period="total")
    answers = burst(server.url, key["key"], body)
    served = [r for r in answers if r.status_code == 200]
    for resp in answers:
        if resp.status_code != 200:
            assert resp.status_code == 429, resp.text[:300]
            assert resp.json()["data"]["error"]["type"] == "budget_exceeded"
    assert served, "the budget covers a few requests: some must be served"
    costs = [r.json()["data"]["metrics"]["cost_usd"] for r in served]
    view = settled_view(server.url, key["id"])
    assert view["reserved_usd"] == 0
    assert view["spend_usd"] == pytest.approx(sum(costs), abs=1e-6)
    assert view["spend_usd"] <= budget
    row = usage_row(server.url, key["id"], len(served))
    assert row["cost_usd"] == pytest.approx(view["spend_usd"], abs=1e-6)
    with capsys.disabled():
        print(
            f"\n[bound] {shape}: budget ${budget:.2f}, served {len(served)}/{CONCURRENT}, "
            f"settled ${view['spend_usd']:.2f} ({row['input_tokens']} in + "
            f"{row['output_tokens']} out tokens)"
        )


@pytest.mark.parametrize("shape", list(SHAPES))
def test_settled_tokens_never_pass_tpm(server, shape, capsys):
    body = SHAPES[shape]
    few = 5 if shape == "cjk" else 3.5
    tpm = int(few * billed_tokens(body))
    key = create_key(server.url, tpm=tpm)
    answers = burst(server.url, key["key"], body)
    served = [r for r in answers if r.status_code == 200]
    for resp in answers:
        if resp.status_code != 200:
            assert resp.status_code == 429, resp.text[:300]
            assert resp.json()["data"]["error"]["type"] == "rate_limit_exceeded"
    assert served, "tpm covers a few requests: some must be served"
    row = usage_row(server.url, key["id"], len(served))
    used = row["input_tokens"] + row["output_tokens"]
    assert row["requests"] == len(served)  # a refused request reached no upstream: no row
    assert used <= tpm
    with capsys.disabled():
        print(f"\n[tpm] {shape}: tpm {tpm}, served {len(served)}/{CONCURRENT}, used {used}")


def test_embeddings_spend_never_passes_a_total_budget(server, capsys):
    texts = [f"passage {i}: " + "words to embed in a vector, " * 14 for i in range(2000)]
    body = {"model": "dear-embed", "input": texts}
    size = len(json.dumps(body, separators=(",", ":")).encode())
    budget = round(3.5 * math.ceil(size / 4) * PRICE / 1e6, 2)
    key = create_key(server.url, budget_usd=budget, budget_period="total")
    answers = burst(server.url, key["key"], body, "/api/v1/embeddings")
    served = [r for r in answers if r.status_code == 200]
    assert served and {r.status_code for r in answers} <= {200, 429}
    view = settled_view(server.url, key["id"])
    assert view["reserved_usd"] == 0 and view["spend_usd"] <= budget
    with capsys.disabled():
        print(
            f"\n[bound] embeddings ({size} bytes): budget ${budget:.2f}, served "
            f"{len(served)}/{CONCURRENT}, settled ${view['spend_usd']:.2f}"
        )


def test_two_instances_on_postgresql_and_redis_never_pass_a_budget(fake_upstream, tmp_path):
    """The same bound with the ledger in PostgreSQL and rates in Redis, shared by two
    instances taking the requests of each shape in turns."""
    config = bound_config(fake_upstream.url)
    with pg_database() as db_url, redis_namespace() as (redis_url, prefix):
        env = {
            "FACADE_ADMIN_KEY": ADMIN_KEY,
            "FACADE_DATABASE_URL": db_url,
            "FACADE_REDIS_URL": redis_url,
            "FACADE_REDIS_PREFIX": prefix,
        }
        a = start_gunicorn(tmp_path, config, env=env, wait=False)
        b = start_gunicorn(tmp_path, config, env=env, wait=False)
        try:
            wait_ready(a)
            wait_ready(b)
            for shape, body in SHAPES.items():
                few = 5 if shape == "cjk" else 3.5
                budget = round(few * billed_tokens(body) * PRICE / 1e6, 2)
                key = create_key(a.url, budget_usd=budget, budget_period="total", tpm=10**9)
                answers = burst([a.url, b.url], key["key"], body)
                served = [r for r in answers if r.status_code == 200]
                assert served and {r.status_code for r in answers} <= {200, 429}
                view = settled_view(b.url, key["id"])
                assert view["reserved_usd"] == 0 and view["spend_usd"] <= budget
                print(
                    f"\n[bound pg+redis] {shape}: budget ${budget:.2f}, served "
                    f"{len(served)}/{CONCURRENT}, settled ${view['spend_usd']:.2f}"
                )
        finally:
            assert a.stop() == 0
            assert b.stop() == 0
