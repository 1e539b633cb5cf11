"""`flask --app wsgi keys ...`: the operators' CLI, as a process, on the server's database."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import requests
import yaml

from facade.keys import hash_key
from tests.support import ROOT, TEAM_KEY, base_config, chat_body, start_gunicorn, upstream_env


@pytest.fixture
def cli(fake_upstream, tmp_path):
    config = tmp_path / "facade.yaml"
    config.write_text(yaml.safe_dump(base_config(fake_upstream.url)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACADE_")}
    env.update(
        upstream_env(),
        FACADE_CONFIG=str(config),
        FACADE_DATABASE_URL=f"sqlite:///{tmp_path}/facade.db",
    )

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "keys", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (done.returncode == 0) == ok, done.stdout + done.stderr
        return done

    return run


def ask(url: str, key: str) -> int:
    with requests.Session() as s:
        s.trust_env = False
        s.headers["Connection"] = "close"
        return s.post(
            f"{url}/api/v1/chat/completions",
            json=chat_body("hi"),
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        ).status_code


def test_create_list_update_rotate_revoke(cli, fake_upstream, tmp_path):
    out = cli(
        "create", "--name", "team-a", "--models", "*", "--rpm", "600",
        "--budget-usd", "100", "--budget-period", "monthly", "--metadata", "team=search",
    ).stdout  # fmt: skip
    plaintext = re.search(r"shown once, store it now\): (\S+)", out).group(1)
    key_id = re.search(r"(key-[0-9a-f]{16})", out).group(1)
    assert "rpm 600" in out and "of $100 monthly" in out

    listed = cli("list").stdout
    assert key_id in listed and plaintext[:8] in listed and plaintext not in listed
    assert TEAM_KEY[:8] in listed and "[config]" in listed
    assert f'"id":"{key_id}"' in cli("list", "--json").stdout

    updated = cli("update", key_id, "--rpm", "none", "--tpm", "5000", "--models", "gpt-test").stdout
    assert "tpm 5000" in updated and "rpm" not in updated.split("limits:")[1].split("spend")[0]

    server = start_gunicorn(tmp_path, base_config(fake_upstream.url), workers=2)
    try:
        assert ask(server.url, plaintext) == 200
        rotated = cli("rotate", key_id).stdout
        new = re.search(r"shown once, store it now\): (\S+)", rotated).group(1)
        assert ask(server.url, plaintext) == 401 and ask(server.url, new) == 200
        assert f"revoked {key_id}" in cli("revoke", key_id).stdout
        assert [ask(server.url, new) for _ in range(6)] == [401] * 6  # on every worker
    finally:
        assert server.stop() == 0
    assert key_id not in cli("list").stdout
    assert key_id in cli("list", "--include-revoked").stdout
    assert plaintext not in server.log() and new not in server.log()


def test_bad_values_are_refused_naming_the_field(cli):
    assert "budget_usd" in cli("create", "--name", "x", "--budget-usd", "-1", ok=False).stderr
    assert "models[0]" in cli("create", "--name", "x", "--models", "ghost", ok=False).stderr
    assert "expires_at" in cli("create", "--name", "x", "--expires-at", "soon", ok=False).stderr
    team_id = f"cfg-{hash_key(TEAM_KEY)[:12]}"
    assert "read-only" in cli("revoke", team_id, ok=False).stderr
    assert "no API key" in cli("rotate", "key-0000000000000000", ok=False).stderr


def test_max_parallel_from_the_command_line(cli):
    out = cli("create", "--name", "batch", "--models", "*", "--max-parallel", "7").stdout
    key_id = re.search(r"(key-[0-9a-f]{16})", out).group(1)
    assert "max_parallel 7" in out
    updated = cli("update", key_id, "--max-parallel", "none").stdout
    assert "max_parallel" not in updated
    assert "max_parallel" in cli("create", "--name", "x", "--max-parallel", "0", ok=False).stderr
