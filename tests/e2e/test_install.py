"""`pip install .` into a fresh venv, then the `facade` command from another directory."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.support import ROOT, free_port

SOURCES = ("pyproject.toml", "README.md", "requirements.txt", "facade")
pytestmark = pytest.mark.timeout(1200)  # the install itself takes a minute or more here


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A venv with Facade installed from a copy of the sources (the tree stays clean)."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(src)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACADE_")}
    env.update(XDG_DATA_HOME=str(tmp / "data"), PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    return {"venv": venv, "tmp": tmp, "cwd": elsewhere, "env": env}


def facade(installed, *args: str, cwd: Path | None = None, **env: str):
    return subprocess.run(
        [str(installed["venv"] / "bin" / "facade"), *args],
        cwd=cwd or installed["cwd"],
        env={**installed["env"], **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_only_the_facade_package_is_installed(installed):
    site = next((installed["venv"] / "lib").glob("python3*/site-packages"))
    assert (site / "facade" / "static" / "dashboard.js").is_file()
    assert (site / "facade" / "demo.yaml").is_file()
    assert not (site / "tests").exists() and not (site / "bench").exists()
    top = next(site.glob("facade-*.dist-info")) / "top_level.txt"
    assert top.read_text().split() == ["facade"]


def test_check_config(installed, tmp_path):
    good = facade(installed, "check-config", str(ROOT / "facade" / "demo.yaml"))
    assert good.returncode == 0 and "ok" in good.stdout, good.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "providers": [{"name": "sim", "kind": "simulator"}],
                "models": [{"name": "m", "targets": [{"provider": "nowhere", "model": "x"}]}],
            }
        )
    )
    done = facade(installed, "check-config", str(bad))
    assert done.returncode == 3
    assert done.stderr.strip().splitlines() == [
        "facade: models[0].targets[0].provider: unknown provider 'nowhere'"
    ]
    assert facade(installed, "keys", "list", FACADE_WORKERS="two").returncode == 3


def test_keys_and_serve_share_one_store_from_any_directory(installed, tmp_path):
    store = installed["tmp"] / "data" / "facade" / "facade.db"
    created = facade(installed, "keys", "create", "--name", "cli-team", "--models", "*",
                     "--budget-usd", "2.5")  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "DEMO" not in created.stdout + created.stderr, "no demo banner on a command"
    plaintext = re.search(r"shown once, store it now\): (\S+)", created.stdout).group(1)
    key_id = re.search(r"(key-[0-9a-f]{16})", created.stdout).group(1)
    assert "of $2.50 monthly" in created.stdout
    assert store.is_file()

    other_dir = tmp_path / "deeper" / "still"
    other_dir.mkdir(parents=True)
    listed = facade(installed, "keys", "list", cwd=other_dir)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0] == f"store: {store}"
    assert key_id in listed.stdout

    port = free_port()
    log = open(tmp_path / "serve.log", "wb")
    server = subprocess.Popen(
        [str(installed["venv"] / "bin" / "facade"), "serve", "--bind", f"127.0.0.1:{port}"],
        cwd=other_dir,
        env=installed["env"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if requests.get(f"{url}/readyz", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        resp = requests.post(
            f"{url}/api/v1/chat/completions",
            json={"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": "Hi"}]},
            headers={"Authorization": f"Bearer {plaintext}"},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        cost = resp.json()["data"]["metrics"]["cost_usd"]
        assert 0 < cost < 0.001
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
        log.close()
    served = (tmp_path / "serve.log").read_text()
    assert f"facade: store {store}" in served
    listed = facade(installed, "keys", "list")
    line = next(x for x in listed.stdout.splitlines() if key_id in x)
    spend = re.search(r"spend: (\$\S+) of \$2\.50 monthly", line).group(1)
    assert spend == f"${cost:.6f}", "money in dollars with enough digits, never 7e-05"
