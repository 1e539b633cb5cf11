"""What operators see: /metrics across gunicorn workers, and the JSON log lines on stdout.

Real processes over real sockets: gunicorn with gevent workers, the fake upstream. The
metrics server runs two workers with its own PROMETHEUS_MULTIPROC_DIR, so the test can tell
which worker served what; the log server is configured with recognisable secrets and driven
through every error path, and its whole output (stdout and stderr) is searched for them.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.support import (
    OTHER_KEY,
    TEAM_KEY,
    UPSTREAM_SECRET,
    base_config,
    free_port,
    start_gunicorn,
)

CHAT = "/api/v1/chat/completions"
PLAIN_CHAT = "/v1/chat/completions"

# Recognisable values that must never reach a log line or a metric.
MARK = "PROMPT-MARKER-5f1e0c"  # inside prompts and bodies
ADMIN_KEY = "adm-ADMIN-SECRET-62f0a1-9d8c7b6a5f4e3d"
DEAD_KEY = "sk-dead-SECRET-0c55d2"  # the key of a provider nobody listens for
GEMINI_KEY = "gm-GEMINI-SECRET-a9b3e7"
CALLER_SECRET = "sk-live-CALLER-SECRET-31337"  # a caller's wrong, real-looking key
LIMITED_KEY = "sk-limited-SECRET-1a2b"
BROKE_KEY = "sk-broke-SECRET-3c4d"


def observed_config(fake_url: str) -> dict:
    config = base_config(fake_url)
    config["providers"] += [
        {
            "name": "dead",
            "kind": "openai",
            "base_url": f"http://127.0.0.1:{free_port()}/v1",  # nothing listens there
            "api_key": "${DEAD_KEY}",
            "timeout_s": {"connect": 1, "read": 3},
        },
        {
            "name": "google",
            "kind": "gemini",
            "base_url": f"{fake_url}/v1beta",
            "api_key": "${GEMINI_KEY}",
            "timeout_s": {"connect": 2, "read": 3},
        },
    ]
    config["models"] += [
        {"name": "dead-model", "targets": [{"provider": "dead", "model": "d"}]},
        {"name": "gem-model", "targets": [{"provider": "google", "model": "gemini-x"}]},
    ]
    config["keys"] += [
        {"name": "limited", "key": LIMITED_KEY, "models": ["*"], "rpm": 2},
        {
            "name": "broke",
            "key": BROKE_KEY,
            "models": ["*"],
            "budget_usd": 0.000001,
            "budget_period": "daily",
        },
    ]
    return config


SECRET_ENV = {"DEAD_KEY": DEAD_KEY, "GEMINI_KEY": GEMINI_KEY, "FACADE_ADMIN_KEY": ADMIN_KEY}


def chat(text: str, model: str = "gpt-test", **fields) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], **fields}


def in_background(fn, *args, **kwargs):
    """Run fn in a thread; its future. (For the 3 s upstream timeouts, beside other traffic.)"""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(fn, *args, **kwargs)
    pool.shutdown(wait=False)
    return future


def call(
    server,
    method: str,
    path: str,
    *,
    key: str | None = TEAM_KEY,
    headers: dict | None = None,
    timeout: float = 20,
    **kwargs,
) -> requests.Response:
    """One request on its own connection (so that any worker may take it)."""
    all_headers = {"Connection": "close"}
    if key is not None:
        all_headers["Authorization"] = f"Bearer {key}"
    all_headers.update(headers or {})
    with requests.Session() as s:
        s.trust_env = False
        resp = s.request(
            method, f"{server.url}{path}", headers=all_headers, timeout=timeout, **kwargs
        )
        resp.content  # noqa: B018 - read it whole before the session closes
        return resp


# ------------------------------------------------------------------------------------------
# Metrics
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def metrics_server(fake_upstream, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metrics")
    srv = start_gunicorn(
        tmp,
        observed_config(fake_upstream.url),
        workers=2,
        env={**SECRET_ENV, "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prom")},
    )
    srv.prom_dir = tmp / "prom"
    yield srv
    assert srv.stop() == 0


class Scrape:
    def __init__(self, text: str):
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}

    def value(self, sample_name: str, **labels: str) -> float:
        """The sum of the samples of that name whose labels include `labels`."""
        total = 0.0
        for family in self.families.values():
            for s in family.samples:
                if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()):
                    total += s.value
        return total


def scrape(server) -> Scrape:
    resp = call(server, "GET", "/metrics", key=None)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    return Scrape(resp.text)


def per_worker_chat_requests(prom_dir: Path, tmp: Path) -> dict[str, float]:
    """Chat requests counted by each worker, read from that worker's own sample file."""
    out = {}
    for db in sorted(prom_dir.glob("counter_*.db")):
        only = tmp / db.stem
        only.mkdir(exist_ok=True)
        shutil.copy(db, only / db.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(only))
        out[db.stem] = Scrape(generate_latest(registry).decode()).value(
            "facade_requests_total", route=CHAT, status="200"
        )
    return out


def test_request_counts_are_exact_across_two_workers(metrics_server, tmp_path):
    before = scrape(metrics_server)
    chat_200 = dict(route=CHAT, status="200", model="gpt-test", provider="fake")
    sent = 0

    def burst(size: int = 20) -> None:
        go = threading.Barrier(size)

        def one(_: int) -> int:
            go.wait()  # all at once, each on its own connection: both workers accept some
            resp = call(metrics_server, "POST", CHAT, json=chat("hello [[fake tokens=3]]"))
            return resp.status_code

        with ThreadPoolExecutor(size) as pool:
            assert list(pool.map(one, range(size))) == [200] * size

    served = {}
    for _ in range(10):
        burst()
        sent += 20
        served = per_worker_chat_requests(metrics_server.prom_dir, tmp_path)
        if sum(v > 0 for v in served.values()) >= 2:
            break
    assert sum(v > 0 for v in served.values()) == 2, f"one worker served everything: {served}"

    # Whichever worker answers the scrape, it reports the sum over both.
    for _ in range(8):
        after = scrape(metrics_server)
        assert after.value("facade_requests_total", **chat_200) - before.value(
            "facade_requests_total", **chat_200
        ) == pytest.approx(sent)

        def delta(name: str, **labels: str) -> float:
            # B023: called only inside this loop iteration, so `after` is the current one
            return after.value(name, **labels) - before.value(name, **labels)  # noqa: B023

        route = dict(route=CHAT, status="200", model="gpt-test")
        assert delta("facade_request_duration_seconds_count", **route) == pytest.approx(sent)
        assert delta("facade_request_duration_seconds_bucket", le="+Inf", **route) == (
            pytest.approx(sent)
        )
        mp = dict(model="gpt-test", provider="fake")
        assert delta("facade_time_to_first_token_seconds_count", **mp) == pytest.approx(sent)
        # "hello [[fake tokens=3]]": the fake counts 3 prompt words and sends 3 tokens.
        assert delta("facade_tokens_total", direction="input", **mp) == pytest.approx(3 * sent)
        assert delta("facade_tokens_total", direction="output", **mp) == pytest.approx(3 * sent)
        # gpt-test costs $1 / $2 per million tokens in and out.
        assert delta("facade_cost_usd_total", **mp) == pytest.approx(sent * 9e-6, rel=1e-6)
        # Only the scrape itself is in flight.
        assert after.value("facade_requests_in_flight") == 1


def test_streams_and_plain_routes_are_counted(metrics_server):
    before = scrape(metrics_server)
    body = chat("[[fake tokens=4]]", stream=True, stream_options={"include_usage": True})
    assert call(metrics_server, "POST", CHAT, json=body).status_code == 200
    assert call(metrics_server, "POST", PLAIN_CHAT, json=chat("[[fake tokens=2]]")).ok
    assert call(metrics_server, "GET", "/v1/models").ok
    emb = {"model": "gpt-test", "input": ["a b c"]}
    assert call(metrics_server, "POST", "/api/v1/embeddings", json=emb).ok
    after = scrape(metrics_server)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("facade_requests_total", route=CHAT, status="200") == 1
    assert delta("facade_requests_total", route=PLAIN_CHAT, status="200") == 1
    assert delta("facade_requests_total", route="/v1/models", status="200") == 1
    assert delta("facade_requests_total", route="/api/v1/embeddings", status="200") == 1
    mp = dict(model="gpt-test", provider="fake")
    # 4 + 2 chat tokens out; in: 2 + 2 prompt words and 3 embedded words.
    assert delta("facade_tokens_total", direction="output", **mp) == 6
    assert delta("facade_tokens_total", direction="input", **mp) == 7


def test_upstream_errors_by_provider_and_type(metrics_server):
    before = scrape(metrics_server)
    slow = in_background(call, metrics_server, "POST", CHAT, json=chat("[[fake slow=5]]"))
    assert call(metrics_server, "POST", CHAT, json=chat("[[fake status=500]]")).status_code == 502
    assert call(metrics_server, "POST", CHAT, json=chat("[[fake badjson]]")).status_code == 502
    assert call(metrics_server, "POST", CHAT, json=chat("x", "dead-model")).status_code == 502
    # The first target of "fallback" fails with a 500; the second answers.
    assert call(metrics_server, "POST", CHAT, json=chat("x", "fallback")).status_code == 200
    assert slow.result().status_code == 504
    after = scrape(metrics_server)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    errors = "facade_upstream_errors_total"
    assert delta(errors, provider="fake", type="upstream_error") == 3  # 500, badjson, fallback
    assert delta(errors, provider="fake", type="upstream_timeout") == 1
    assert delta(errors, provider="dead", type="upstream_error") == 1
    assert delta("facade_requests_total", route=CHAT, status="502") == 3
    assert delta("facade_requests_total", route=CHAT, status="504") == 1
    assert delta("facade_requests_total", route=CHAT, status="200", model="fallback") == 1


def test_failed_requests_keep_their_model_label(metrics_server):
    """An operator's error rate by model needs the model on the 502s and 504s too.

    The model is resolved (a configured name, a bounded label) before the upstream is
    called, so a request that failed upstream is labelled with it, not with "none".
    """
    before = scrape(metrics_server)
    assert call(metrics_server, "POST", CHAT, json=chat("[[fake status=500]]")).status_code == 502
    after = scrape(metrics_server)
    labels = dict(route=CHAT, status="502", model="gpt-test", provider="fake")
    assert (
        after.value("facade_requests_total", **labels)
        - before.value("facade_requests_total", **labels)
        == 1
    )


def test_key_limit_rejections_are_counted_by_reason(metrics_server):
    before = scrape(metrics_server)
    statuses = [
        call(metrics_server, "POST", CHAT, key=LIMITED_KEY, json=chat("[[fake tokens=1]]"))
        for _ in range(3)
    ]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    broke = call(metrics_server, "POST", CHAT, key=BROKE_KEY, json=chat("[[fake tokens=1]]"))
    assert broke.status_code == 429 and "budget" in broke.json()["message"]
    after = scrape(metrics_server)
    reasons = "facade_rejections_total"
    assert (
        after.value(reasons, reason="rate_limit_exceeded")
        - before.value(reasons, reason="rate_limit_exceeded")
        == 1
    )
    assert (
        after.value(reasons, reason="budget_exceeded")
        - before.value(reasons, reason="budget_exceeded")
        == 1
    )


def test_an_upstream_429_is_not_a_key_rejection(metrics_server):
    """facade_rejections_total is "refused by a key's limits"; an upstream's 429 is not that.

    It is an upstream error (by provider and type), and alerting on key rejections must not
    fire because a provider is rate limiting the gateway.
    """
    before = scrape(metrics_server)
    resp = call(metrics_server, "POST", CHAT, json=chat("[[fake status=429]]"))
    assert resp.status_code == 429
    after = scrape(metrics_server)
    errors = dict(provider="fake", type="rate_limit_exceeded")
    assert (
        after.value("facade_upstream_errors_total", **errors)
        - before.value("facade_upstream_errors_total", **errors)
        == 1
    )
    assert after.value("facade_rejections_total") == before.value("facade_rejections_total")


def test_names_units_and_labels_follow_prometheus_conventions(metrics_server):
    # Make sure every family has samples: errors, rejections, tokens, cost.
    call(metrics_server, "POST", CHAT, json=chat("[[fake status=500]]"))
    call(metrics_server, "POST", CHAT, key=BROKE_KEY, json=chat("x"))
    call(metrics_server, "POST", CHAT, json=chat("[[fake tokens=2]]"))
    families = scrape(metrics_server).families
    assert set(families) >= {
        "facade_requests",
        "facade_request_duration_seconds",
        "facade_time_to_first_token_seconds",
        "facade_tokens",
        "facade_cost_usd",
        "facade_upstream_errors",
        "facade_rejections",
        "facade_requests_in_flight",
    }
    for name, family in families.items():
        assert name.startswith("facade_"), name
        assert family.documentation, f"{name} has no HELP"
        assert name == name.lower()
        if family.type == "counter":
            assert {s.name for s in family.samples} <= {f"{name}_total"}, name
        if family.type == "histogram":
            assert name.endswith("_seconds"), f"{name}: durations are in seconds"
        if "cost" in name:
            assert name.endswith("_usd") and family.type == "counter"
        if any(word in name for word in ("duration", "latency", "time")):
            assert name.endswith("_seconds"), name
        for s in family.samples:
            assert not {"key", "api_key", "key_name", "user", "prompt", "request_id"} & set(
                s.labels
            ), f"{name} has a per-caller label: {s.labels}"


def test_no_key_prompt_or_raw_model_string_in_any_label(metrics_server):
    raw_model = "sk-team-SECRET-as-a-model-77aa"
    assert call(metrics_server, "POST", CHAT, json=chat(MARK, raw_model)).status_code == 404
    assert call(metrics_server, "POST", PLAIN_CHAT, json=chat(MARK, raw_model)).status_code == 404
    assert call(metrics_server, "POST", CHAT, key=CALLER_SECRET, json=chat(MARK)).status_code == 401
    assert call(metrics_server, "POST", CHAT, json=chat(f"{MARK} [[fake tokens=1]]")).ok
    assert call(metrics_server, "POST", f"/api/v1/{MARK}", json={}).status_code == 404
    emb = {"model": raw_model, "input": MARK}
    assert call(metrics_server, "POST", "/api/v1/embeddings", json=emb).status_code == 404
    after = scrape(metrics_server)
    for secret in (
        raw_model,
        "as-a-model",
        MARK,
        TEAM_KEY,
        OTHER_KEY,
        CALLER_SECRET,
        "CALLER-SECRET",
        UPSTREAM_SECRET,
        LIMITED_KEY,
        BROKE_KEY,
        DEAD_KEY,
        GEMINI_KEY,
        ADMIN_KEY,
        "sk-team-",  # not even a key's prefix
    ):
        assert secret not in after.text, secret
    models = {
        s.labels["model"] for f in after.families.values() for s in f.samples if "model" in s.labels
    }
    assert models <= {
        "gpt-test",
        "fallback",
        "sim-model",
        "secret-model",
        "dead-model",
        "gem-model",
        "none",
    }
    routes = {
        s.labels["route"] for f in after.families.values() for s in f.samples if "route" in s.labels
    }
    assert all(r.startswith("/") or r == "unmatched" for r in routes), routes
    assert not [r for r in routes if MARK in r]


# ------------------------------------------------------------------------------------------
# Logs
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def log_server(fake_upstream, tmp_path_factory):
    srv = start_gunicorn(
        tmp_path_factory.mktemp("logs"), observed_config(fake_upstream.url), env=SECRET_ENV
    )
    yield srv
    assert srv.stop() == 0


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def access_lines(server) -> list[dict]:
    return [r for r in json_lines(server.log()) if r.get("logger") == "facade.access"]


def wait_for_access_line(server, rid: str, timeout: float = 5) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = [r for r in access_lines(server) if r["request_id"] == rid]
        if rows:
            return rows[0]
        time.sleep(0.05)
    raise AssertionError(f"no access line for request {rid}")


def hang_up_mid_stream(server, rid: str) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    body = json.dumps(chat(f"{MARK} [[fake tokens=50 drip=0.2]]", stream=True)).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
            + f"Authorization: Bearer {TEAM_KEY}\r\nX-Request-ID: {rid}\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        received = b""
        while b"data: " not in received:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the stream"
            received += chunk


class Traffic:
    """Every request sent to the log server: (what, HTTP status, request id, response)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, int, str, requests.Response | None]] = []
        self.created_key: str | None = None

    def add(self, what: str, resp: requests.Response) -> requests.Response:
        self.rows.append((what, resp.status_code, resp.headers["X-Request-ID"], resp))
        return resp

    def rid(self, what: str) -> str:
        return next(r for w, _, r, _ in self.rows if w == what)


@pytest.fixture(scope="module")
def traffic(log_server) -> Traffic:
    """Drive the log server through successes and every error path it has, once."""
    srv = log_server
    t = Traffic()
    json_ct = {"Content-Type": "application/json"}

    def post(what: str, path: str = CHAT, **kwargs) -> requests.Response:
        return t.add(what, call(srv, "POST", path, **kwargs))

    # The upstream timeout takes read timeout (3 s): run it alongside the rest.
    slow = in_background(call, srv, "POST", CHAT, json=chat(f"{MARK} [[fake slow=5]]"))

    post("ok", json=chat(f"{MARK} hello [[fake tokens=3]]"))
    post(
        "ok-stream",
        json=chat(f"{MARK} [[fake tokens=4]]", stream=True, stream_options={"include_usage": True}),
    )
    post("ok-plain", PLAIN_CHAT, json=chat(f"{MARK} [[fake tokens=2]]"))
    post("ok-plain-stream", PLAIN_CHAT, json=chat(f"{MARK} [[fake tokens=2]]", stream=True))
    post("ok-embeddings", "/api/v1/embeddings", json={"model": "gpt-test", "input": MARK})
    post("ok-gemini", json=chat(f"{MARK} [[fake tokens=2]]", "gem-model"))
    t.add("ok-models", call(srv, "GET", "/v1/models"))

    post("401-bad-key", key=CALLER_SECRET, json=chat(MARK))
    post("401-bad-key-plain", PLAIN_CHAT, key=CALLER_SECRET, json=chat(MARK))
    post("401-admin-key-on-chat", key=ADMIN_KEY, json=chat(MARK))
    post(
        "401-not-bearer",
        key=None,
        headers={"Authorization": f"Token {CALLER_SECRET}"},
        json=chat(MARK),
    )
    post("401-no-key", key=None, json=chat(MARK))
    post("403", key=OTHER_KEY, json=chat(MARK, "secret-model"))
    post("404-model", json=chat(MARK, f"{MARK}-model"))
    post("404-model-plain", PLAIN_CHAT, json=chat(MARK, f"{MARK}-model"))
    post("404-embeddings", "/v1/embeddings", json={"model": f"{MARK}-model", "input": MARK})
    post("404-path", f"/api/v1/{MARK}", json={})
    t.add("405", call(srv, "GET", CHAT))
    post("400-range", json=chat(MARK, temperature=5))
    post("400-unknown-field", json=chat(MARK, max_token=5))
    post("400-bad-json", data=f'{{"messages": "{MARK}'.encode(), headers=json_ct)
    post(
        "400-utf8", data=b'{"model": "gpt-test", "messages": "\xff' + MARK.encode(), headers=json_ct
    )
    post("413", json=chat(MARK * 10_000))
    post("413-chunked", data=iter([MARK.encode() * 10_000]), headers=json_ct)
    post("415", data=MARK.encode(), headers={"Content-Type": "text/plain"})
    post("502-upstream-401", json=chat(f"{MARK} [[fake status=401]]"))
    post("502-upstream-401-gemini", json=chat(f"{MARK} [[fake status=401]]", "gem-model"))
    post("502-upstream-500", json=chat(f"{MARK} [[fake status=500]]"))
    post("429-upstream", json=chat(f"{MARK} [[fake status=429]]"))
    post("400-upstream", json=chat(f"{MARK} [[fake status=400]]"))
    post("502-badjson", json=chat(f"{MARK} [[fake badjson]]"))
    post("502-refused", json=chat(MARK, "dead-model"))
    post("502-refused-stream", json=chat(MARK, "dead-model", stream=True))
    post("ok-limited-1", key=LIMITED_KEY, json=chat(f"{MARK} [[fake tokens=1]]"))
    post("ok-limited-2", key=LIMITED_KEY, json=chat(f"{MARK} [[fake tokens=1]]"))
    post("429-rpm", key=LIMITED_KEY, json=chat(f"{MARK} [[fake tokens=1]]"))
    post("429-budget", key=BROKE_KEY, json=chat(f"{MARK} [[fake tokens=1]]"))
    post("midstream", json=chat(f"{MARK} [[fake tokens=6 midstream=3]]", stream=True))
    post(
        "midstream-plain",
        PLAIN_CHAT,
        json=chat(f"{MARK} [[fake tokens=6 midstream=3]]", stream=True),
    )
    post("cut", json=chat(f"{MARK} [[fake tokens=6 cut=3]]", stream=True))

    t.add("401-admin", call(srv, "GET", "/api/v1/admin/keys", key=CALLER_SECRET))
    t.add("401-admin-team-key", call(srv, "GET", "/api/v1/admin/keys"))
    created = t.add(
        "admin-create",
        call(
            srv,
            "POST",
            "/api/v1/admin/keys",
            key=ADMIN_KEY,
            json={"name": "made-here", "models": ["*"]},
        ),
    )
    if created.status_code == 201:
        t.created_key = created.json()["data"]["key"]
        post("ok-created-key", key=t.created_key, json=chat(f"{MARK} [[fake tokens=1]]"))

    hang_up_mid_stream(srv, "obs-hangup-1")
    t.rows.append(("hangup", 499, "obs-hangup-1", None))
    t.add("504-timeout", slow.result())
    wait_for_access_line(srv, "obs-hangup-1")
    time.sleep(0.3)  # let the last lines reach the file
    return t


EXPECTED_STATUS = {
    "401": 401,
    "403": 403,
    "404": 404,
    "405": 405,
    "400": 400,
    "413": 413,
    "415": 415,
    "502": 502,
    "504": 504,
}


def test_every_error_path_answered_as_expected(traffic):
    statuses = {what: status for what, status, _, _ in traffic.rows}
    for what, status in statuses.items():
        prefix = what.split("-")[0]
        if prefix in EXPECTED_STATUS:
            assert status == EXPECTED_STATUS[prefix], (what, status)
        elif what.startswith("ok") or what in ("midstream", "midstream-plain", "cut"):
            assert status == 200, (what, status)  # a stream's failure comes after its 200
    assert [statuses[w] for w in ("429-rpm", "429-budget", "429-upstream")] == [429] * 3
    assert statuses["admin-create"] == 201
    assert statuses["ok-created-key"] == 200


def test_no_secret_and_no_prompt_anywhere_in_the_output(log_server, traffic):
    out = log_server.log()
    secrets = [
        UPSTREAM_SECRET,
        TEAM_KEY,
        OTHER_KEY,
        ADMIN_KEY,
        DEAD_KEY,
        GEMINI_KEY,
        CALLER_SECRET,
        LIMITED_KEY,
        BROKE_KEY,
    ]
    if traffic.created_key:
        secrets.append(traffic.created_key)
    for secret in secrets:
        assert secret not in out, f"a key leaked into the logs: {secret[:8]}..."
        # Not even the part after the prefix that is shown (key_prefix is 8 characters).
        assert secret[8:] not in out, f"part of a key leaked into the logs: {secret[:8]}..."
    assert "Bearer" not in out
    assert "Authorization" not in out and "authorization" not in out
    # The fake's upstream 401 message quotes part of our key: it must not be logged either.
    assert "Incorrect API key" not in out and "************" not in out
    # Prompts, and anything else the caller sent in a body, path or model name.
    assert MARK not in out
    assert "PROMPT-MARKER" not in out


def test_output_is_json_lines_besides_gunicorn_own(log_server, traffic):
    gunicorn_line = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[[A-Z]+\] ")
    for line in log_server.log().splitlines():
        if not line.strip():
            continue
        if line.startswith("{"):
            record = json.loads(line)
            assert {"ts", "level", "logger", "msg"} <= set(record), line
        else:
            assert gunicorn_line.match(line), f"neither JSON nor gunicorn's: {line!r}"


def test_one_access_line_per_request(log_server, traffic):
    by_rid: dict[str, list[dict]] = {}
    for row in access_lines(log_server):
        by_rid.setdefault(row["request_id"], []).append(row)
    for what, status, rid, _ in traffic.rows:
        rows = by_rid.get(rid, [])
        assert len(rows) == 1, f"{what}: {len(rows)} access lines for request {rid}"
        line = rows[0]
        if what in ("midstream", "midstream-plain", "cut"):
            assert line["status"] == 502, (what, line)  # the 200 was sent; the line tells
        else:
            assert line["status"] == status, (what, line)
    # Probes and scrapes are not logged; nothing else is logged twice.
    assert all(len(rows) == 1 for rows in by_rid.values())


def test_access_line_fields(log_server, traffic):
    lines = {r["request_id"]: r for r in access_lines(log_server)}
    ok = lines[traffic.rid("ok")]
    assert ok["logger"] == "facade.access" and ok["level"] == "info"
    assert ok["method"] == "POST" and ok["route"] == CHAT and ok["status"] == 200
    assert ok["key_name"] == "team" and ok["key_prefix"] == TEAM_KEY[:8]
    assert ok["model"] == "gpt-test" and ok["provider"] == "fake"
    assert ok["upstream_model"] == "up-model" and ok["attempts"] == 1
    assert ok["stream"] is False
    # "PROMPT-MARKER-5f1e0c hello [[fake tokens=3]]": 4 words in, 3 tokens out, $1/$2 per 1M.
    assert (ok["input_tokens"], ok["output_tokens"]) == (4, 3)
    assert ok["cost_usd"] == pytest.approx(10e-6)
    assert 0 < ok["time_to_first_token_s"] <= ok["latency_s"] < 5
    assert "error_type" not in ok

    stream = lines[traffic.rid("ok-stream")]
    assert stream["stream"] is True and stream["status"] == 200
    assert (stream["input_tokens"], stream["output_tokens"]) == (3, 4)
    assert 0 < stream["time_to_first_token_s"] <= stream["latency_s"]

    assert lines[traffic.rid("ok-plain")]["route"] == PLAIN_CHAT
    assert lines[traffic.rid("ok-gemini")]["provider"] == "google"

    bad_key = lines[traffic.rid("401-bad-key")]
    assert bad_key["status"] == 401 and bad_key["error_type"] == "authentication_error"
    assert bad_key["key_name"] is None and bad_key["key_prefix"] is None

    forbidden = lines[traffic.rid("403")]
    assert forbidden["key_name"] == "other" and forbidden["error_type"] == "permission_error"

    not_found = lines[traffic.rid("404-model")]
    assert not_found["model"] is None and not_found["error_type"] == "model_not_found"

    refused = lines[traffic.rid("502-refused")]
    assert refused["error_type"] == "upstream_error" and refused["attempts"] == 1

    timeout = lines[traffic.rid("504-timeout")]
    assert timeout["error_type"] == "upstream_timeout" and 2.5 < timeout["latency_s"] < 5

    rpm = lines[traffic.rid("429-rpm")]
    assert rpm["error_type"] == "rate_limit_exceeded" and rpm["key_name"] == "limited"
    assert lines[traffic.rid("429-budget")]["error_type"] == "budget_exceeded"

    hangup = lines["obs-hangup-1"]
    assert hangup["status"] == 499 and hangup["error_type"] == "client_closed"

    mid = lines[traffic.rid("midstream")]
    assert mid["stream"] is True and mid["error_type"] == "upstream_error"


def test_error_lines_carry_the_request_id(log_server, traffic):
    records = json_lines(log_server.log())
    # Lines about one request, at warning and above, all say which request.
    per_request = [
        r
        for r in records
        if r["level"] in ("warning", "error", "critical")
        and r["logger"] not in ("facade.config", "facade.store", "facade.usage", "facade.router")
    ]
    assert per_request, "no warning was logged for the upstream failures"
    for r in per_request:
        assert r.get("request_id"), f"a warning without its request id: {r}"
    warned = {r["request_id"] for r in per_request}
    for what in (
        "502-upstream-500",
        "502-upstream-401",
        "502-badjson",
        "502-refused",
        "504-timeout",
        "midstream",
        "cut",
    ):
        assert traffic.rid(what) in warned, f"{what}: no error line with its request id"


def test_error_responses_carry_the_request_id(traffic):
    for what, status, rid, resp in traffic.rows:
        if resp is None or status < 400:
            continue
        body = resp.json()
        if resp.request.path_url.startswith("/v1/"):
            assert set(body["error"]) == {"message", "type", "param", "code"}, what
        else:
            assert body["data"]["request_id"] == rid, what


# ------------------------------------------------------------------------------------------
# FACADE_LOG_LEVEL
# ------------------------------------------------------------------------------------------


def test_log_level_warning_suppresses_access_lines(fake_upstream, tmp_path):
    srv = start_gunicorn(
        tmp_path, base_config(fake_upstream.url), env={"FACADE_LOG_LEVEL": "WARNING"}
    )
    try:
        ok = call(srv, "POST", CHAT, json=chat("[[fake tokens=2]]"))
        failed = call(srv, "POST", CHAT, json=chat("[[fake status=500]]"))
        assert (ok.status_code, failed.status_code) == (200, 502)
        rid = failed.headers["X-Request-ID"]
        deadline = time.monotonic() + 5
        while rid not in srv.log() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        assert srv.stop() == 0
    records = json_lines(srv.log())
    assert not [r for r in records if r["logger"] == "facade.access"]
    assert not [r for r in records if r["level"] in ("info", "debug")]
    # Warnings still come, with their request id.
    assert any(r["level"] == "warning" and r.get("request_id") == rid for r in records)


def test_log_level_debug_keeps_access_lines(fake_upstream, tmp_path):
    srv = start_gunicorn(
        tmp_path, base_config(fake_upstream.url), env={"FACADE_LOG_LEVEL": "debug"}
    )
    try:
        rid = call(srv, "POST", CHAT, json=chat("[[fake tokens=2]]")).headers["X-Request-ID"]
        wait_for_access_line(srv, rid)
    finally:
        assert srv.stop() == 0
    assert TEAM_KEY not in srv.log() and UPSTREAM_SECRET not in srv.log()


def test_a_bad_log_level_stops_start_up_naming_the_variable(fake_upstream, tmp_path):
    srv = start_gunicorn(
        tmp_path, base_config(fake_upstream.url), env={"FACADE_LOG_LEVEL": "LOUD"}, wait=False
    )
    try:
        code = srv.proc.wait(20)
    finally:
        srv.stop()
    assert code != 0
    assert "FACADE_LOG_LEVEL" in srv.log()
    assert "Traceback" not in srv.log()
