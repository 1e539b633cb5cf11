"""Helpers to start real processes for tests: the fake upstream and gunicorn."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM_SECRET = "sk-upstream-SECRET-7f3a9c"
TEAM_KEY = "sk-team-SECRET-4b1d-7e2a9c"
OTHER_KEY = "sk-other-SECRET-9e2c"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fake:
    """A running fake upstream process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.upstream", "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"fake upstream did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        self.http.trust_env = False

    def requests(self, request_id: str | None = None) -> list[dict]:
        rows = self.http.get(f"{self.url}/_fake/requests", timeout=5).json()
        if request_id is not None:
            rows = [r for r in rows if r["headers"].get("x-request-id") == request_id]
        return rows

    def events(self) -> list[dict]:
        return self.http.get(f"{self.url}/_fake/events", timeout=5).json()

    def reset(self) -> None:
        self.http.post(f"{self.url}/_fake/reset", timeout=5)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc.stdout.close()
        self.http.close()


def base_config(fake_url: str) -> dict:
    """A config for tests: one OpenAI-compatible provider on the fake, a few models and keys."""
    return {
        "providers": [
            {
                "name": "fake",
                "kind": "openai",
                "base_url": f"{fake_url}/v1",
                "api_key": "${UPSTREAM_API_KEY}",
                "timeout_s": {"connect": 2, "read": 3},
            },
            {"name": "sim", "kind": "simulator", "ttft_s": 0.01, "tokens_per_s": 500},
        ],
        "models": [
            {
                "name": "gpt-test",
                "targets": [{"provider": "fake", "model": "up-model"}],
                "input_cost_per_1m": 1.0,
                "output_cost_per_1m": 2.0,
                "context_window": 16385,
            },
            {
                "name": "fallback",
                "targets": [
                    {"provider": "fake", "model": "broken+status=500", "weight": 1000},
                    {"provider": "fake", "model": "healthy", "weight": 0.001},
                ],
            },
            {"name": "sim-model", "targets": [{"provider": "sim", "model": "sim"}]},
            {"name": "secret-model", "targets": [{"provider": "fake", "model": "secret"}]},
        ],
        "auto": {"candidates": ["gpt-test", "sim-model"], "strategy": "priority"},
        "keys": [
            {"name": "team", "key": "${TEAM_KEY}", "models": ["*"]},
            {"name": "other", "key": OTHER_KEY, "models": ["gpt-test"]},
        ],
        "limits": {"max_body_bytes": 65536},
        "routing": {"cooldown_s": 30, "failures_to_cool": 1000},
    }


def upstream_env() -> dict[str, str]:
    return {"UPSTREAM_API_KEY": UPSTREAM_SECRET, "TEAM_KEY": TEAM_KEY}


@dataclass
class Server:
    """A gunicorn process serving Facade with gevent workers."""

    url: str
    proc: subprocess.Popen
    log_path: Path
    lines: list[str] = field(default_factory=list)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def start_gunicorn(
    tmp_path: Path,
    config: dict | None,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    wait: bool = True,
) -> Server:
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FACADE_")}
    full_env.update(upstream_env())
    full_env.update(
        FACADE_BIND=f"127.0.0.1:{port}",
        FACADE_WORKERS=str(workers),
        FACADE_DATABASE_URL=f"sqlite:///{tmp_path}/facade.db",
        FACADE_GRACEFUL_TIMEOUT_S="10",
    )
    if config is not None:
        cfg_path = tmp_path / f"facade-{port}.yaml"
        cfg_path.write_text(yaml.safe_dump(config))
        full_env["FACADE_CONFIG"] = str(cfg_path)
    full_env.update(env or {})
    log_path = tmp_path / f"gunicorn-{port}.log"
    out = open(log_path, "wb")  # closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=full_env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    threading.Thread(target=lambda: (proc.wait(), out.close()), daemon=True).start()
    server = Server(f"http://127.0.0.1:{port}", proc, log_path)
    if wait:
        wait_ready(server)
    return server


def worker_pids(master: int) -> list[int]:
    """The processes gunicorn's master `master` forked (its workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == master:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def wait_ready(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited early:\n{server.log()}")
        try:
            if requests.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"gunicorn did not become healthy:\n{server.log()}")


# -- the store's real servers: PostgreSQL and Redis (tests fail, never skip, without them) ----
PG_TEST_URL = os.environ.get("FACADE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("FACADE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ADMIN_KEY = "adm-SECRET-5c8e1f-0a9b8c7d6e5f4a3b2c1d"


def _pg_admin():
    import psycopg

    dsn = PG_TEST_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as err:
        raise RuntimeError(
            f"these tests need PostgreSQL at {PG_TEST_URL} (.ci/run starts it): {err}"
        ) from None


@contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database (`facade_test_<random>`), dropped afterwards."""
    name = f"facade_test_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_TEST_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def redis_namespace() -> Iterator[tuple[str, str]]:
    """(url, key prefix) on the test Redis; every key under the prefix is deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as err:
        client.close()
        raise RuntimeError(
            f"these tests need Redis at {REDIS_TEST_URL} (.ci/run starts it): {err}"
        ) from None
    prefix = f"facade-test-{uuid.uuid4().hex[:10]}:"
    try:
        yield REDIS_TEST_URL, prefix
    finally:
        stale = list(client.scan_iter(match=prefix + "*"))
        if stale:
            client.delete(*stale)
        client.close()


def admin_headers(key: str = ADMIN_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def with_vendor_models(config: dict, fake_url: str) -> dict:
    """`config` plus Anthropic- and Gemini-kind providers on the fake, and the models `claude`
    and `gem` on them (for tests that run one request shape against every vendor)."""
    config["providers"] += [
        {"name": "anthropic", "kind": "anthropic", "base_url": fake_url, "api_key": "a"},
        {"name": "google", "kind": "gemini", "base_url": f"{fake_url}/v1beta", "api_key": "g"},
    ]
    config["models"] += [
        {"name": "claude", "targets": [{"provider": "anthropic", "model": "claude-x"}]},
        {"name": "gem", "targets": [{"provider": "google", "model": "gemini-x"}]},
    ]
    return config


def openai_sdk(server: Server, key: str = TEAM_KEY):
    """The official `openai` client on a server's `/v1`, no retries; trust_env off so an
    HTTP(S)_PROXY in the environment cannot reroute 127.0.0.1."""
    import httpx2
    from openai import OpenAI

    http = httpx2.Client(trust_env=False, timeout=20)
    return OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, http_client=http)


def chat_body(text: str = "hello", model: str = "gpt-test", **fields) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], **fields}


LIMITED_KEY = "sk-limited-SECRET-0a1b2c3d"


def anthropic_config(fake_url: str) -> dict:
    """`base_config` plus Anthropic-, Gemini- and Azure-kind providers on the fake
    (`claude-test`, `gemini-test`, `azure-test`), a model that falls back from Anthropic to
    the OpenAI-compatible one, and a key allowed one request a minute."""
    config = base_config(fake_url)
    config["providers"].append(
        {
            "name": "claude",
            "kind": "anthropic",
            "base_url": fake_url,
            "api_key": "${UPSTREAM_API_KEY}",
            "timeout_s": {"connect": 2, "read": 3},
        }
    )
    config["providers"] += [
        {"name": "google", "kind": "gemini", "base_url": f"{fake_url}/v1beta", "api_key": "g"},
        {"name": "azure", "kind": "azure", "base_url": fake_url, "api_key": "z"},
    ]
    config["models"] += [
        {"name": "gemini-test", "targets": [{"provider": "google", "model": "gemini-up"}]},
        {"name": "azure-test", "targets": [{"provider": "azure", "model": "azure-up"}]},
        {
            "name": "claude-test",
            "targets": [{"provider": "claude", "model": "claude-up"}],
            "input_cost_per_1m": 3.0,
            "output_cost_per_1m": 15.0,
        },
        {
            "name": "claude-then-gpt",
            "targets": [
                {"provider": "claude", "model": "claude-up+status=529", "weight": 1000},
                {"provider": "fake", "model": "up-model", "weight": 0.001},
            ],
        },
    ]
    config["keys"].append({"name": "limited", "key": LIMITED_KEY, "models": ["*"], "rpm": 1})
    return config
