"""`make bench`: the facade against the same fast upstream called directly, in one run.

Prints ratios and per-request CPU of the facade worker (from /proc, so the load
generator's own cost does not count), so the figures hold on a noisy machine.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()  # before any stdlib import, so sockets are cooperative

import json  # noqa: E402 - after the monkey patch above
import os  # noqa: E402 - after the monkey patch above
import signal  # noqa: E402 - after the monkey patch above
import tempfile  # noqa: E402 - after the monkey patch above
import time  # noqa: E402 - after the monkey patch above
from collections.abc import Callable  # noqa: E402 - after the monkey patch above
from pathlib import Path  # noqa: E402 - after the monkey patch above

import yaml  # noqa: E402 - after the monkey patch above

from bench.cache import CACHE_CONFIG, CACHED_KEY, cache_rows  # noqa: E402 - after the patch
from bench.load import Result, build_request, percentile, run_for  # noqa: E402 - after the patch
from bench.procs import (  # noqa: E402 - after the monkey patch above
    cpu_seconds,
    peak_rss_mb,
    raise_fd_limit,
    start_bare,
    start_facade,
    start_upstream,
)

SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
ONLY = os.environ.get("BENCH_ONLY", "")  # "cache": only the response cache's phases
# Keys as long as a real deployment needs (a config key under 20 characters stops start-up).
PLAIN_KEY = "sk-bench-plain-0123456789ab"
LIMITED_KEY = "sk-bench-limited-0123456789ab"
PROMPT = "Say hello in one short sentence, please."


def config(upstream_port: int) -> dict:
    base = f"http://127.0.0.1:{upstream_port}/v1"
    model = {"input_cost_per_1m": 0.5, "output_cost_per_1m": 1.5, "context_window": 16385}
    return {
        "providers": [
            {"name": "bench", "kind": "openai", "base_url": base, "api_key": "sk-up-bench"}
        ],
        "models": [
            {"name": "bench", "targets": [{"provider": "bench", "model": "bench"}], **model},
            {"name": "stream", "targets": [{"provider": "bench", "model": "bench-50-0"}], **model},
            {"name": "paced", "targets": [{"provider": "bench", "model": "bench-100-20"}], **model},
            {"name": "slow", "targets": [{"provider": "bench", "model": "bench-20-500"}], **model},
            # non-streaming answers after 50 ms, like a small model: throughput at c=256
            {"name": "50ms", "targets": [{"provider": "bench", "model": "bench-0-50"}], **model},
        ],
        "keys": [
            # 1000 streams at once: above the default max_parallel of 500 per key
            {"name": "plain", "key": PLAIN_KEY, "models": ["*"], "max_parallel": 2000},
            {
                "name": "limited",
                "key": LIMITED_KEY,
                "models": ["*"],
                "rpm": 10_000_000,
                "tpm": 1_000_000_000,
                "budget_usd": 1_000_000,
                "budget_period": "monthly",
            },
            CACHED_KEY,
        ],
        "cache": CACHE_CONFIG,  # used by the `cached` key only
    }


def body(model: str, stream: bool = False) -> bytes:
    payload = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 64}
    if stream:
        payload["stream"] = True
    return json.dumps(payload, separators=(",", ":")).encode()


def facade_req(port: int, model: str, key: str, stream: bool = False) -> bytes:
    return build_request(
        f"127.0.0.1:{port}",
        "/api/v1/chat/completions",
        body(model, stream),
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )


def direct_req(port: int, model: str, stream: bool = False) -> bytes:
    return build_request(
        f"127.0.0.1:{port}",
        "/v1/chat/completions",
        body(model, stream),
        {"Authorization": "Bearer sk-up-bench", "Content-Type": "application/json"},
    )


def responses_req(port: int, model: str, stream: bool = False, store: bool = True) -> bytes:
    payload = {"model": model, "input": PROMPT, "max_output_tokens": 64, "store": store}
    if stream:
        payload["stream"] = True
    return build_request(
        f"127.0.0.1:{port}",
        "/api/v1/responses",
        json.dumps(payload, separators=(",", ":")).encode(),
        {"Authorization": f"Bearer {PLAIN_KEY}", "Content-Type": "application/json"},
    )


def responses_rows(fa, port: int, worker: int, cpu_chat: float) -> list[tuple[str, str]]:
    """The Responses API on the chat pipeline: CPU per request, and per streamed event."""
    rows = []
    for store in (True, False):
        raw = responses_req(port, "bench", store=store)
        res, cpu, _ = measured(worker, lambda raw=raw: run_for(fa, raw, 64, SECONDS))
        per = cpu / max(1, res.completed)
        rows.append(
            (
                f"responses CPU per request (store {str(store).lower()})",
                f"{ms(per)} ({per / cpu_chat:.2f}x of chat), errors {res.errors}",
            )
        )
    raw = responses_req(port, "stream", stream=True, store=False)
    rs, cpu, _ = measured(worker, lambda: run_for(fa, raw, 64, SECONDS))
    rows += [
        ("responses streams @64: events", f"{rs.chunks} in {rs.completed}, errors {rs.errors}"),
        ("facade CPU per streamed Responses event", f"{cpu / max(1, rs.chunks) * 1e6:.1f} us"),
    ]
    return rows


def messages_req(port: int, model: str, stream: bool = False) -> bytes:
    payload = {
        "model": model,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    if stream:
        payload["stream"] = True
    return build_request(
        f"127.0.0.1:{port}",
        "/v1/messages",
        json.dumps(payload, separators=(",", ":")).encode(),
        {"x-api-key": PLAIN_KEY, "Content-Type": "application/json"},
    )


def messages_rows(fa, port: int, worker: int, cpu_chat: float) -> list[tuple[str, str]]:
    """The Anthropic Messages API on the chat pipeline (translated to the OpenAI-compatible
    upstream): CPU per request, and per streamed event."""
    res, cpu, _ = measured(worker, lambda: run_for(fa, messages_req(port, "bench"), 64, SECONDS))
    per = cpu / max(1, res.completed)
    rows = [
        (
            "messages CPU per request",
            f"{ms(per)} ({per / cpu_chat:.2f}x of chat), errors {res.errors}",
        )
    ]
    raw = messages_req(port, "stream", stream=True)
    ms_, cpu, _ = measured(worker, lambda: run_for(fa, raw, 64, SECONDS))
    rows += [
        ("messages streams @64: events", f"{ms_.chunks} in {ms_.completed}, errors {ms_.errors}"),
        ("facade CPU per streamed Messages event", f"{cpu / max(1, ms_.chunks) * 1e6:.1f} us"),
    ]
    return rows


def measured(worker: int, fn) -> tuple[Result, float, float]:
    cpu0, t0 = cpu_seconds(worker), time.perf_counter()
    result = fn()
    return result, cpu_seconds(worker) - cpu0, time.perf_counter() - t0


def hold_streams(addr, raw: bytes, count: int, ramp_s: float) -> Result:
    """Open `count` streams spread over `ramp_s`, each read to its end."""
    import gevent

    from bench.load import Connection

    total = Result()

    def one(delay: float) -> None:
        gevent.sleep(delay)
        conn = Connection(addr)
        conn.request(raw, total)
        conn.close()

    gevent.joinall([gevent.spawn(one, i * ramp_s / count) for i in range(count)])
    return total


def ms(x: float) -> str:
    return f"{x * 1000:.2f} ms"


def main() -> None:
    """BENCH_STORE=pg measures limits on PostgreSQL + Redis (a scratch database and prefix)."""
    if os.environ.get("BENCH_STORE") == "pg":
        from tests.support import pg_database, redis_namespace

        with pg_database() as db_url, redis_namespace() as (redis_url, prefix):
            store = {
                "FACADE_DATABASE_URL": db_url,
                "FACADE_REDIS_URL": redis_url,
                "FACADE_REDIS_PREFIX": prefix,
            }
            run(store, "PostgreSQL + Redis")
    else:
        run({}, "SQLite")


def bare_req(port: int, model: str, stream: bool = False) -> bytes:
    return build_request(
        f"127.0.0.1:{port}",
        "/v1/chat/completions",
        body(model, stream),
        {"Content-Type": "application/json"},
    )


class Table:
    """Rows of (measure, figure, target check): ratios are to the bare stack in this run."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def add(self, name: str, figure: str, verdict: str = "") -> None:
        self.rows.append((name, figure, verdict))

    def ratio(
        self, name: str, ours: float, base: float, limit: float, unit: Callable | None = None
    ) -> None:
        """`ours / base` against `limit` (a most-allowed ratio; negative: a least-allowed one)."""
        unit = unit or ms
        r = ours / base if base else float("nan")
        ok = r <= limit if limit > 0 else r >= -limit
        target = f"<= {limit:.2f}x" if limit > 0 else f">= {-limit:.2f}x"
        verdict = f"{'ok' if ok else 'MISSED'} ({target})"
        self.add(name, f"{unit(ours)} vs bare {unit(base)} = {r:.3f}x", verdict)

    def print(self, title: str) -> None:
        width = max(len(k) for k, _, _ in self.rows)
        wide = max(len(v) for _, v, _ in self.rows)
        print(f"\n{title}")
        for k, v, verdict in self.rows:
            print(f"  {k.ljust(width)}  {v.ljust(wide)}  {verdict}".rstrip())


def cpu_per(
    worker: int, addr: tuple[str, int], raw: bytes, conc: int
) -> tuple[float, Result, float]:
    """CPU seconds of `worker` per completed request at `conc` connections, and the rate."""
    res, cpu, wall = measured(worker, lambda: run_for(addr, raw, conc, SECONDS))
    return cpu / max(1, res.completed), res, res.completed / wall


def measure(t: Table, port: int, worker: int, up_port: int, bare_port: int, bare_worker: int):
    """The main figures: CPU per request, throughput, latency and streams, next to bare."""
    up, fa, ba = ("127.0.0.1", up_port), ("127.0.0.1", port), ("127.0.0.1", bare_port)
    plain = facade_req(port, "bench", PLAIN_KEY)
    limits = facade_req(port, "bench", LIMITED_KEY)
    bare_plain = bare_req(bare_port, "bench")
    for addr, raw in ((fa, plain), (fa, limits), (ba, bare_plain)):  # warm pools, caches
        run_for(addr, raw, 8, 0, requests=50)

    # CPU per non-streaming request at 64 connections.
    cpu_bare, res_bare, _ = cpu_per(bare_worker, ba, bare_plain, 64)
    cpu_plain, res, _ = cpu_per(worker, fa, plain, 64)
    cpu_limited, res_l, _ = cpu_per(worker, fa, limits, 64)
    t.add(
        "errors (bare / unlimited / limited)",
        f"{res_bare.errors} / {res.errors} / {res_l.errors}",
    )
    t.ratio("CPU per request, key without limits", cpu_plain, cpu_bare, 1.05)
    t.ratio("CPU per request, rpm+tpm+budget", cpu_limited, cpu_bare, 1.10)
    t.add("  limited / unlimited", f"{cpu_limited / cpu_plain:.3f}x", "target <= 1.15x")

    # Throughput with a 50 ms upstream at 256 connections (ideal: 256 / 0.05 = 5120/s).
    _, rb, rps_bare = cpu_per(bare_worker, ba, bare_req(bare_port, "bench-0-50"), 256)
    _, rf, rps_fa = cpu_per(worker, fa, facade_req(port, "50ms", LIMITED_KEY), 256)
    t.ratio("RPS, 50 ms upstream, c=256", rps_fa, rps_bare, -0.90, unit=lambda x: f"{x:.0f}")

    # Added latency at one connection: p50 and p99 over the upstream called directly.
    d1 = run_for(up, direct_req(up_port, "bench"), 1, 0, requests=1000)
    b1 = run_for(ba, bare_plain, 1, 0, requests=1000)
    f1 = run_for(fa, limits, 1, 0, requests=1000)
    for p in (50, 99):
        direct = percentile(d1.latencies, p)
        added_bare = percentile(b1.latencies, p) - direct
        added_fa = percentile(f1.latencies, p) - direct
        verdict = "ok" if p != 99 or added_fa <= added_bare + 0.001 else "MISSED"
        t.add(
            f"added latency @1 p{p}",
            f"{ms(added_fa)} vs bare {ms(added_bare)}",
            f"{verdict} (p99 <= bare + 1 ms)" if p == 99 else "",
        )

    # Flat out: what relaying one chunk costs (with the per-chunk envelope).
    fs, cpu_fs, _ = measured(
        worker,
        lambda: run_for(fa, facade_req(port, "stream", PLAIN_KEY, True), 64, SECONDS),
    )
    bs, cpu_bs, _ = measured(
        bare_worker, lambda: run_for(ba, bare_req(bare_port, "bench-50-0", True), 64, SECONDS)
    )
    per_fa, per_bare = cpu_fs / max(1, fs.chunks), cpu_bs / max(1, bs.chunks)
    t.add(
        "CPU per relayed chunk",
        f"{per_fa * 1e6:.1f} us vs bare {per_bare * 1e6:.1f} us = {per_fa / per_bare:.2f}x",
        f"{'ok' if per_fa <= 75e-6 else 'MISSED'} (<= 75 us)",
    )
    t.add("  stream errors (facade / bare)", f"{fs.errors} / {bs.errors}")

    # First chunk among 64 paced streams (100 chunks 20 ms apart), arrivals staggered.
    paced_fa = run_for(fa, facade_req(port, "paced", PLAIN_KEY, True), 64, SECONDS, stagger_s=2.0)
    paced_ba = run_for(ba, bare_req(bare_port, "bench-100-20", True), 64, SECONDS, stagger_s=2.0)
    t.add(
        "first chunk p50 / p99, 64 streams",
        f"{p50_p99(paced_fa.first_chunk)} vs bare {p50_p99(paced_ba.first_chunk)}",
    )
    for name, (raw, addr, pid) in {
        "bare": (bare_req(bare_port, "bench-20-500", True), ba, bare_worker),
        "facade": (facade_req(port, "slow", PLAIN_KEY, True), fa, worker),
    }.items():
        # 1000 streams held at once: 20 chunks 500 ms apart (10 s), opened over 4 s.
        held = hold_streams(addr, raw, 1000, 4.0)
        p99, rss = percentile(held.first_chunk, 99), peak_rss_mb(pid)
        ok = name == "bare" or (held.completed == 1000 and p99 < 0.3 and rss < 130)
        t.add(
            f"1000 slow streams, {name}",
            f"{held.completed} held, first chunk p99 {ms(p99)}, peak RSS {rss:.0f} MB",
            "" if name == "bare" else f"{'ok' if ok else 'MISSED'} (p99 < 300 ms, < 130 MB)",
        )
    for name, figure in responses_rows(fa, port, worker, cpu_plain):
        t.add(name, figure)
    for name, figure in messages_rows(fa, port, worker, cpu_plain):
        t.add(name, figure)


def redis_cache_rows(up_port: int) -> list[tuple[str, str, str]]:
    """The cache phases again on an instance whose cache is in Redis (a scratch prefix)."""
    from tests.support import redis_namespace

    with redis_namespace() as (redis_url, prefix):
        tmp = Path(tempfile.mkdtemp(prefix="facade-bench-redis-"))
        env = {"FACADE_REDIS_URL": redis_url, "FACADE_REDIS_PREFIX": prefix}
        facade, port, worker = start_facade(tmp, yaml.safe_dump(config(up_port)), env)
        try:
            return cache_rows(port, worker, "Redis", SECONDS / 2, PLAIN_KEY)
        finally:
            facade.send_signal(signal.SIGTERM)
            facade.wait(30)


def run(store_env: dict, store_name: str) -> None:
    raise_fd_limit()
    tmp = Path(tempfile.mkdtemp(prefix="facade-bench-"))
    upstream, up_port = start_upstream()
    facade, port, worker = start_facade(tmp, yaml.safe_dump(config(up_port)), store_env)
    bare, bare_port, bare_worker = start_bare(tmp, up_port)
    t = Table()
    try:
        if ONLY != "cache":
            measure(t, port, worker, up_port, bare_port, bare_worker)
        on_redis = "FACADE_REDIS_URL" in store_env
        rows = cache_rows(port, worker, "Redis" if on_redis else "memory", SECONDS / 2, PLAIN_KEY)
        if not on_redis:
            rows += redis_cache_rows(up_port)
        for row in rows:
            t.add(*row)
    finally:
        for proc in (facade, bare):
            proc.send_signal(signal.SIGTERM)
        upstream.terminate()
        for proc in (facade, bare):
            proc.wait(30)
        upstream.wait(5)
    t.print(
        f"Facade benchmark ({SECONDS:.0f} s per phase, 1 gevent worker each,"
        f" {os.cpu_count()} cores, store: {store_name}); bare = Flask + gunicorn gevent + requests"
    )


def p50_p99(values: list[float]) -> str:
    return f"{ms(percentile(values, 50))} / {ms(percentile(values, 99))}"


if __name__ == "__main__":
    main()
