"""The processes `make bench` measures, and what it reads of them from /proc.

Three servers on loopback: the fast upstream (canned answers), Facade under gunicorn with one
gevent worker, and the bare stack (bench/bare.py) under the same gunicorn worker class. Each
worker's CPU comes from /proc, so the load generator's own cost never counts.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args: list[str], env: dict | None = None, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "wb") if log else subprocess.PIPE  # lives with the process
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def start_upstream() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.fast_upstream"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline()
    return proc, int(line.split()[1])


def start_gunicorn(
    app: str, env: dict, log: Path, health: str, extra: list[str] = ()
) -> tuple[subprocess.Popen, int, int]:
    """gunicorn with one gevent worker serving `app`; returns (master, port, worker pid)."""
    port = free_port()
    env = {**env, "FACADE_BIND": f"127.0.0.1:{port}", "FACADE_WORKERS": "1"}
    args = [sys.executable, "-m", "gunicorn", *extra, "-b", f"127.0.0.1:{port}", app]
    proc = spawn(args, env, log)
    import requests

    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}{health}", timeout=1)
            break
        except requests.RequestException:
            time.sleep(0.1)
    else:
        raise SystemExit(log.read_text())
    worker = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
    return proc, port, worker


def start_facade(tmp: Path, config_yaml: str, extra_env: dict | None = None):
    cfg = tmp / "bench.yaml"
    cfg.write_text(config_yaml)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACADE_")}
    env.update(FACADE_CONFIG=str(cfg), FACADE_DATABASE_URL=f"sqlite:///{tmp}/bench.db")
    env.update(extra_env or {})
    return start_gunicorn(
        "wsgi:app", env, tmp / "facade.log", "/healthz", ["-c", "gunicorn.conf.py"]
    )


def start_bare(tmp: Path, upstream_port: int):
    env = {**os.environ, "BARE_UPSTREAM": f"http://127.0.0.1:{upstream_port}/v1"}
    extra = ["-k", "gevent", "-w", "1", "--worker-connections", "1000", "--keep-alive", "75"]
    return start_gunicorn("bench.bare:app", env, tmp / "bare.log", "/", extra)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
