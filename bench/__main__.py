"""`make bench`: the facade against the same fast upstream called directly, in one run.

Prints ratios and per-request CPU of the facade worker (from /proc, so the load
generator's own cost does not count), so the figures hold on a noisy machine.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()  # before any stdlib import, so sockets are cooperative

import json  # noqa: E402 - after the monkey patch above
import os  # noqa: E402 - after the monkey patch above
import resource  # noqa: E402 - after the monkey patch above
import signal  # noqa: E402 - after the monkey patch above
import subprocess  # noqa: E402 - after the monkey patch above
import sys  # noqa: E402 - after the monkey patch above
import tempfile  # noqa: E402 - after the monkey patch above
import time  # noqa: E402 - after the monkey patch above
from pathlib import Path  # noqa: E402 - after the monkey patch above

from bench.load import Result, build_request, percentile, run_for  # noqa: E402 - after the monkey patch above

ROOT = Path(__file__).resolve().parent.parent
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
TICK = os.sysconf("SC_CLK_TCK")
PROMPT = "Say hello in one short sentence, please."


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))


def spawn(args: list[str], env: dict | None = None, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "wb") if log else subprocess.PIPE  # lives with the process
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def start_upstream() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.fast_upstream"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline()
    return proc, int(line.split()[1])


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
        ],
        "keys": [
            # 1000 streams at once: above the default max_parallel of 500 per key
            {"name": "plain", "key": "sk-bench-plain", "models": ["*"], "max_parallel": 2000},
            {
                "name": "limited",
                "key": "sk-bench-limited",
                "models": ["*"],
                "rpm": 10_000_000,
                "tpm": 1_000_000_000,
                "budget_usd": 1_000_000,
                "budget_period": "monthly",
            },
        ],
    }


def start_facade(tmp: Path, upstream_port: int, extra_env: dict | None = None):
    import yaml

    cfg = tmp / "bench.yaml"
    cfg.write_text(yaml.safe_dump(config(upstream_port)))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACADE_")}
    env.update(
        FACADE_CONFIG=str(cfg),
        FACADE_BIND=f"127.0.0.1:{port}",
        FACADE_WORKERS="1",
        FACADE_DATABASE_URL=f"sqlite:///{tmp}/bench.db",
    )
    env.update(extra_env or {})
    proc = spawn(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        env,
        tmp / "facade.log",
    )
    deadline = time.time() + 30
    import requests

    while time.time() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                break
        except requests.RequestException:
            time.sleep(0.1)
    else:
        raise SystemExit((tmp / "facade.log").read_text())
    worker = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
    return proc, port, worker


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


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
        {"Authorization": "Bearer sk-bench-plain", "Content-Type": "application/json"},
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


def rate(res: Result, wall: float, direct: Result) -> str:
    rps = res.completed / wall
    return f"{rps:.0f} ({rps / (direct.completed / SECONDS):.3f}x of direct), errors {res.errors}"


def limited(cpu_limited: float, cpu_plain: float, res: Result) -> str:
    return f"{ms(cpu_limited)} ({cpu_limited / cpu_plain:.2f}x of no limits), errors {res.errors}"


def p50_p99(values: list[float]) -> str:
    return f"{ms(percentile(values, 50))} / {ms(percentile(values, 99))}"


def added(facade: list[float], direct: list[float]) -> str:
    p50 = percentile(facade, 50) - percentile(direct, 50)
    return f"{ms(p50)} / {ms(percentile(facade, 99) - percentile(direct, 99))}"


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


def run(store_env: dict, store_name: str) -> None:
    raise_fd_limit()
    tmp = Path(tempfile.mkdtemp(prefix="facade-bench-"))
    upstream, up_port = start_upstream()
    facade, port, worker = start_facade(tmp, up_port, store_env)
    up, fa = ("127.0.0.1", up_port), ("127.0.0.1", port)
    rows: list[tuple[str, str]] = []
    try:
        # warm both paths (connection pools, caches)
        run_for(fa, facade_req(port, "bench", "sk-bench-plain"), 8, 0, requests=50)
        run_for(fa, facade_req(port, "bench", "sk-bench-limited"), 8, 0, requests=50)
        run_for(up, direct_req(up_port, "bench"), 8, 0, requests=50)

        direct = run_for(up, direct_req(up_port, "bench"), 64, SECONDS)
        plain = facade_req(port, "bench", "sk-bench-plain")
        res, cpu, wall = measured(worker, lambda: run_for(fa, plain, 64, SECONDS))
        cpu_plain = cpu / max(1, res.completed)
        rows += [
            ("non-streaming rps @64, direct", f"{direct.completed / SECONDS:.0f}"),
            ("non-streaming rps @64, facade", rate(res, wall, direct)),
            ("facade CPU per request (no limits)", ms(cpu_plain)),
        ]
        limits = facade_req(port, "bench", "sk-bench-limited")
        res, cpu, wall = measured(worker, lambda: run_for(fa, limits, 64, SECONDS))
        cpu_limited = cpu / max(1, res.completed)
        rows += [("facade CPU per request (rpm+tpm+budget)", limited(cpu_limited, cpu_plain, res))]

        d1 = run_for(up, direct_req(up_port, "bench"), 1, 0, requests=1000)
        f1 = run_for(fa, plain, 1, 0, requests=1000)
        rows += [
            ("latency @1 p50/p99, direct", p50_p99(d1.latencies)),
            ("latency @1 p50/p99, facade", p50_p99(f1.latencies)),
            ("added latency p50 / p99", added(f1.latencies, d1.latencies)),
        ]

        # Flat out: what relaying one chunk costs.
        stream_req = facade_req(port, "stream", "sk-bench-plain", stream=True)
        fs, cpu, wall = measured(worker, lambda: run_for(fa, stream_req, 64, SECONDS))
        rows += [
            ("streams @64 flat out: chunks", f"{fs.chunks} in {fs.completed}, errors {fs.errors}"),
            ("facade CPU per relayed chunk", f"{cpu / max(1, fs.chunks) * 1e6:.1f} us"),
        ]
        rows += responses_rows(fa, port, worker, cpu_plain)
        # Paced like a model (100 chunks, 20 ms apart: 2 s streams, 50 tokens/s): what the
        # facade adds before the first chunk, alone and among 64 concurrent streams.
        for conc in (1, 64):
            direct = direct_req(up_port, "bench-100-20", stream=True)
            paced = facade_req(port, "paced", "sk-bench-plain", stream=True)
            ds = run_for(up, direct, conc, SECONDS, stagger_s=2.0)
            fp = run_for(fa, paced, conc, SECONDS, stagger_s=2.0)
            d50, f50 = percentile(ds.first_chunk, 50), percentile(fp.first_chunk, 50)
            rows += [
                (f"paced @{conc}: first chunk p50 direct/facade", f"{ms(d50)} / {ms(f50)}"),
                (f"paced @{conc}: first-chunk overhead p50", ms(f50 - d50)),
            ]

        # 1000 streams held at once: 20 chunks 500 ms apart (10 s), opened over 4 s.
        slow = hold_streams(fa, facade_req(port, "slow", "sk-bench-plain", stream=True), 1000, 4.0)
        rows += [
            ("1000 slow streams held", f"{slow.completed} completed, errors {slow.errors}"),
            ("  p99 time to first chunk", ms(percentile(slow.first_chunk, 99))),
            ("  facade worker peak RSS", f"{peak_rss_mb(worker):.0f} MB"),
        ]
    finally:
        facade.send_signal(signal.SIGTERM)
        upstream.terminate()
        facade.wait(30)
        upstream.wait(5)
    width = max(len(k) for k, _ in rows)
    print(
        f"\nFacade benchmark ({SECONDS:.0f} s per phase, 1 gevent worker,"
        f" {os.cpu_count()} cores, store: {store_name})"
    )
    for k, v in rows:
        print(f"  {k.ljust(width)}  {v}")


if __name__ == "__main__":
    main()
