"""One client cannot starve the others: floods through a real gunicorn with one gevent worker.

The flood runs in its own process (`tests.flood`): one connection pipelining 30,000
requests, or sending 500 KB bodies back to back. Meanwhile another client probes the
same worker and a stream runs on it. The probe's latency stays low, the stream ends with
`[DONE]`, and the worker is never killed for missing its heartbeat. The bound asserted is
generous (this machine is shared); the figures are printed for the record (`-s`).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import requests

from tests.support import OTHER_KEY, ROOT, TEAM_KEY, base_config, start_gunicorn

PROBE_P99_BOUND_S = 0.5
PROBE_EVERY_S = 0.01
LIMITED_KEY = "sk-limited-SECRET-0a1b2c3d4e5f"


@pytest.fixture(scope="module")
def server(fake_upstream, tmp_path_factory):
    config = base_config(fake_upstream.url)
    config["limits"] = {"max_body_bytes": 1 << 20}
    config["providers"].append(
        {"name": "slow-sim", "kind": "simulator", "ttft_s": 0.01, "tokens_per_s": 40}
    )
    config["models"].append({"name": "slow", "targets": [{"provider": "slow-sim", "model": "s"}]})
    config["keys"].append({"name": "limited", "key": LIMITED_KEY, "models": ["*"], "rpm": 1})
    # A worker that misses its heartbeat for 5 s is killed: a starved loop shows at once.
    srv = start_gunicorn(
        tmp_path_factory.mktemp("fairness"),
        config,
        workers=1,
        env={"FACADE_WORKER_TIMEOUT_S": "5"},
    )
    yield srv
    srv.stop()


def figures_of(latencies: list[float]) -> dict:
    return {
        "probes": len(latencies),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


class Probe(threading.Thread):
    """Another client: one keep-alive connection, a GET (/healthz) due every 10 ms.

    Each probe's delay counts from when it was due, not from when it was sent, so a stall
    counts for every probe that should have gone out during it (no coordinated omission).
    """

    def __init__(self, url: str, path: str = "/healthz", key: str | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.path, self.latencies, self.errors = url, path, [], []
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.halt = threading.Event()

    def run(self) -> None:
        with requests.Session() as s:
            s.trust_env = False
            due = time.perf_counter()
            while not self.halt.is_set():
                try:
                    resp = s.get(f"{self.url}{self.path}", headers=self.headers, timeout=30)
                    resp.raise_for_status()
                except requests.RequestException as err:
                    self.errors.append(repr(err))
                now = time.perf_counter()
                while due <= now:  # every probe due by now was answered now
                    self.latencies.append(now - due)
                    due += PROBE_EVERY_S
                self.halt.wait(due - now)


class Stream(threading.Thread):
    """A live stream on the same worker, read to its end."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.lines, self.error = url, [], None

    def run(self) -> None:
        body = {"model": "slow", "messages": [{"role": "user", "content": "hi"}]}
        body.update(stream=True, max_tokens=120)
        try:
            with requests.post(
                f"{self.url}/api/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {TEAM_KEY}"},
                stream=True,
                timeout=60,
            ) as resp:
                self.lines = [line for line in resp.iter_lines() if line]
        except requests.RequestException as err:
            self.error = repr(err)


def run_flood(server, mode: str, *args: str) -> dict:
    """Flood the server while a probe and a stream run; their figures and the flood's."""
    log_start = len(server.log())
    probe, stream = Probe(server.url), Stream(server.url)
    probe.start()
    time.sleep(0.3)  # a baseline before the flood
    stream.start()
    started = time.monotonic()
    flood = subprocess.run(
        [sys.executable, "-m", "tests.flood", server.url, mode, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    took = time.monotonic() - started
    stream.join(60)
    probe.halt.set()
    probe.join(35)
    figures = {
        "flood": flood.stdout.strip(),
        "flood_s": round(took, 2),
        **figures_of(probe.latencies),
    }
    print(f"\nflood {mode} {' '.join(args)}: {figures}")
    assert not probe.errors, probe.errors[:3]
    assert stream.error is None, stream.error
    assert stream.lines[-1] == b"data: [DONE]", stream.lines[-3:]
    assert "WORKER TIMEOUT" not in server.log()[log_start:]
    sent, answered = (int(w) for w in flood.stdout.split()[1::2])
    assert answered == sent, flood.stdout
    assert figures["p99_ms"] < PROBE_P99_BOUND_S * 1000, figures
    return figures


def test_a_pipelining_connection_does_not_starve_another_client(server):
    run_flood(server, "pipeline", "--count", "30000")


def test_large_bodies_without_a_key_do_not_starve_another_client(server):
    run_flood(server, "bodies", "--count", "300")


def test_large_bodies_with_a_key_do_not_starve_another_client(server):
    run_flood(server, "bodies", "--count", "100", "--key", TEAM_KEY)


def test_senders_over_their_rpm_cost_another_key_little(server):
    """Three senders of 33,000-message bodies on a key over its rpm: each is refused before
    its body is parsed, so another key's requests stay fast."""
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {LIMITED_KEY}"}
    url = f"{server.url}/api/v1/chat/completions"
    assert requests.post(url, json=body, headers=headers, timeout=30).status_code == 200
    probe = Probe(server.url, "/api/v1/models", OTHER_KEY)
    probe.start()
    time.sleep(0.3)
    flood = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.flood", server.url, "bodies", "--count", "20"]
            + ["--key", LIMITED_KEY, "--messages", "33000", "--body-bytes", "1000000"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=170)[0] for p in flood]
    probe.halt.set()
    probe.join(35)
    figures = figures_of(probe.latencies)
    print(f"\nthree senders over rpm, 33,000 messages each: {outs} {figures}")
    assert not probe.errors, probe.errors[:3]
    assert all(out.split()[1] == out.split()[3] == "20" for out in outs), outs
    assert figures["p50_ms"] < 100, figures
    assert requests.post(url, json=body, headers=headers, timeout=30).status_code == 429
