"""Start-up: a bad config stops gunicorn once, naming the key; no config serves the demo."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import requests

from tests.support import base_config, start_gunicorn


def test_bad_config_stops_start_up_naming_the_key(tmp_path, fake_upstream):
    config = base_config(fake_upstream.url)
    config["models"][0]["targets"][0]["provider"] = "nowhere"
    server = start_gunicorn(tmp_path, config, wait=False)
    try:
        code = server.proc.wait(20)
    except subprocess.TimeoutExpired:
        server.stop()
        pytest.fail("gunicorn kept running with a bad config")
    time.sleep(0.1)
    assert code != 0
    log = server.log()
    assert "models[0].targets[0].provider" in log
    assert "Booting worker" not in log, "config must be refused in the master, before workers"


def test_missing_env_var_is_named(tmp_path, fake_upstream):
    config = base_config(fake_upstream.url)
    config["providers"][0]["api_key"] = "${FACADE_TEST_UNSET_VAR}"
    server = start_gunicorn(tmp_path, config, wait=False)
    assert server.proc.wait(20) != 0
    time.sleep(0.1)
    assert (
        "providers[0].api_key: environment variable FACADE_TEST_UNSET_VAR is not set"
        in server.log()
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    server = start_gunicorn(tmp_path_factory.mktemp("demo"), None)
    yield server
    server.stop()


DEMO = {"Authorization": "Bearer sk-demo"}


def test_demo_config_warns_loudly(demo):
    assert "BUILT-IN DEMO CONFIG" in demo.log()


@pytest.mark.parametrize("model", ["gpt-3.5-turbo", "demo", "auto", None])
def test_demo_models_answer_offline(demo, model):
    body = {"messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 5}
    if model:
        body["model"] = model
    resp = requests.post(f"{demo.url}/api/v1/chat/completions", json=body, headers=DEMO, timeout=10)
    assert resp.status_code == 200
    data = resp.json()["data"]
    assert data["metrics"]["provider"] == "simulator"
    assert data["metrics"]["output_tokens"] == 5 == data["usage"]["completion_tokens"]


def test_demo_streams_at_a_pace(demo):
    body = {
        "model": "gpt-3.5-turbo",
        "messages": [{"role": "user", "content": "Stream please"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 12,
    }
    resp = requests.post(f"{demo.url}/api/v1/chat/completions", json=body, headers=DEMO, timeout=10)
    blocks = resp.content.split(b"\n\n")[:-1]
    assert blocks[-1] == b"data: [DONE]"
    usage_event = json.loads(blocks[-2].removeprefix(b"data: "))
    metrics = usage_event["data"]["metrics"]
    assert metrics["output_tokens"] == 12
    assert metrics["time_to_first_token_s"] >= 0.15, "the simulator waits before its first token"
    assert 0 < metrics["inter_token_latency_s"] < 0.1


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("FACADE_WORKERS", "two", "whole number"),
        ("FACADE_DATABASE_URL", "postgresql://facade:pw-SECRET@db:port/facade", "postgresql://"),
        ("FACADE_DATABASE_URL", "mysql://db/facade", "sqlite:///"),
        ("FACADE_BIND", "localhost", "HOST:PORT"),
        ("FACADE_REDIS_URL", "redis://cache:six/0", "redis://"),
        ("FACADE_USAGE_FLUSH_S", "soon", "seconds"),
    ],
)
def test_bad_environment_stops_start_up_in_one_line(tmp_path, name, value, expected):
    server = start_gunicorn(tmp_path, None, env={name: value}, wait=False)
    try:
        code = server.proc.wait(20)
    except subprocess.TimeoutExpired:
        server.stop()
        pytest.fail(f"gunicorn kept running with {name}={value}")
    time.sleep(0.1)
    log = server.log()
    assert code == 3, log
    lines = log.strip().splitlines()
    assert len(lines) == 1, log
    assert name in lines[0] and expected in lines[0]
    assert "Traceback" not in log and "Booting worker" not in log
    assert "pw-SECRET" not in log, "a URL's password must not be echoed"
