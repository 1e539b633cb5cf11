"""Weak secrets stop start-up (exit 3, one message naming each) outside the demo config; the
CLI never writes a control character to the terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from facade.config import parse_config
from facade.store import Store
from facade.store.keystore import KeyStore
from tests.support import ROOT, base_config, start_gunicorn, upstream_env

STRONG_ADMIN = "adm-" + "0123456789abcdef" * 2
NAME = "evil\n\u001b[2J\u009bforged"


def weak_config(fake_url: str) -> dict:
    config = base_config(fake_url)
    config["keys"].append({"name": "tiny", "key": "sk-4chr", "models": ["*"]})
    return config


def test_weak_secrets_stop_gunicorn_naming_them(tmp_path, fake_upstream):
    server = start_gunicorn(
        tmp_path, weak_config(fake_upstream.url), env={"FACADE_ADMIN_KEY": "a"}, wait=False
    )
    try:
        code = server.proc.wait(20)
    except subprocess.TimeoutExpired:
        server.stop()
        pytest.fail("gunicorn kept running with weak secrets")
    time.sleep(0.1)
    log = server.log()
    assert code == 3, log
    (line,) = [line for line in log.splitlines() if "secrets too short" in line]
    assert "FACADE_ADMIN_KEY" in line and "keys[2].key of 'tiny'" in line
    assert "sk-4chr" not in log and "Booting worker" not in log


def test_strong_secrets_start(tmp_path, fake_upstream):
    server = start_gunicorn(
        tmp_path, base_config(fake_upstream.url), env={"FACADE_ADMIN_KEY": STRONG_ADMIN}
    )
    assert server.stop() == 0


def check_config(path, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("FACADE_")}
    full.update(upstream_env(), **env)
    return subprocess.run(
        [sys.executable, "-c", "from facade.command import main; main()", "check-config", path],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_config_refuses_weak_secrets_but_not_the_demo(tmp_path, fake_upstream):
    weak = tmp_path / "weak.yaml"
    weak.write_text(yaml.safe_dump(weak_config(fake_upstream.url)))
    done = check_config(str(weak), FACADE_ADMIN_KEY=STRONG_ADMIN)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "keys[2].key of 'tiny'" in done.stderr and "FACADE_ADMIN_KEY" not in done.stderr
    assert "sk-4chr" not in done.stdout + done.stderr
    demo = tmp_path / "demo.yaml"
    demo.write_text((ROOT / "facade" / "demo.yaml").read_text())
    assert check_config(str(demo), FACADE_ADMIN_KEY="short").returncode == 0


def test_the_cli_escapes_control_characters(tmp_path, fake_upstream):
    """A name stored before names were checked (or written to the database by hand) is
    printed escaped: no escape sequence runs, no line is forged."""
    config = base_config(fake_upstream.url)
    db = f"sqlite:///{tmp_path}/facade.db"
    store = Store(db)
    try:
        parsed = parse_config(config, environ={**os.environ, **upstream_env()})
        view, _ = KeyStore(store, set(parsed.models)).create(
            {"name": NAME, "models": ["*"], "metadata": {}}
        )
    finally:
        store.close()
    path = tmp_path / "facade.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACADE_")}
    env.update(upstream_env(), FACADE_CONFIG=str(path), FACADE_DATABASE_URL=db)
    for args in (["keys", "list"], ["keys", "list", "--json"]):
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        out = done.stdout + done.stderr
        assert "\u001b" not in out and "\u009b" not in out
        assert not any(line.startswith("forged") for line in out.splitlines())
        if "--json" in args:  # still JSON, the same name once decoded
            names = [json.loads(line)["name"] for line in done.stdout.splitlines()]
            assert NAME in names
        else:
            assert "evil\\u000a\\u001b[2J\\u009bforged" in out
