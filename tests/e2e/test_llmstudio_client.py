"""An LLMstudio client, written from the engine API's request and response examples, against
gunicorn: `requests` posting {model, chat_input, is_stream}, reading chat_output and
metrics.cost_usd; the NDJSON stream line by line; the two lists."""

from __future__ import annotations

import json

import pytest
import requests

from tests.support import TEAM_KEY, UPSTREAM_SECRET, anthropic_config, start_gunicorn


@pytest.fixture(scope="module")
def server(fake_upstream, tmp_path_factory):
    srv = start_gunicorn(tmp_path_factory.mktemp("llmstudio"), anthropic_config(fake_upstream.url))
    yield srv
    assert srv.stop() == 0
    log = srv.log()
    assert UPSTREAM_SECRET not in log and TEAM_KEY not in log


@pytest.fixture
def http():
    s = requests.Session()
    s.trust_env = False
    yield s
    s.close()


def test_chat(server, http):
    resp = http.post(
        f"{server.url}/api/engine/chat/fake",
        json={"model": "gpt-test", "chat_input": "Hi there [[fake tokens=3]]", "is_stream": False},
        headers={"Authorization": f"Bearer {TEAM_KEY}"},
        timeout=(5, 30),
    )
    resp.raise_for_status()
    data = resp.json()
    assert data["chat_output"] == "tok0 tok1 tok2"
    assert data["metrics"]["cost_usd"] > 0
    assert data["provider"] == "fake" and data["model"] == "gpt-test"


def test_chat_with_the_key_in_the_body_on_an_anthropic_provider(server, http):
    resp = http.post(
        f"{server.url}/api/engine/chat/claude",
        json={
            "model": "claude-test",
            "chat_input": "Hi [[fake tokens=2]]",
            "parameters": {"temperature": 0.5, "max_tokens": 100},
            "is_stream": False,
            "session_id": "conv-1",
            "api_key": TEAM_KEY,
        },
        timeout=(5, 30),
    )
    resp.raise_for_status()
    data = resp.json()
    assert (data["chat_output"], data["session_id"]) == ("tok0 tok1", "conv-1")
    assert data["metrics"]["provider"] == "claude"


@pytest.mark.parametrize(("provider", "model"), [("fake", "gpt-test"), ("claude", "claude-test")])
def test_stream(server, http, provider, model):
    resp = http.post(
        f"{server.url}/api/engine/chat/{provider}",
        json={
            "model": model,
            "chat_input": "go [[fake tokens=5 drip=0.01 split]]",
            "is_stream": True,
        },
        headers={"Authorization": f"Bearer {TEAM_KEY}"},
        stream=True,
        timeout=(5, 30),
    )
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/x-ndjson")
    pieces, last = [], None
    for line in resp.iter_lines():  # bytes: one JSON object a line
        if not line.strip():
            continue
        chunk = json.loads(line)
        if chunk.get("metrics"):
            last = chunk
        else:
            pieces.append(chunk["chat_output_stream"])
    resp.close()
    assert "".join(pieces) == "tok0 tok1 tok2 tok3 tok4"
    assert last["chat_output"] == "tok0 tok1 tok2 tok3 tok4"
    assert last["metrics"]["output_tokens"] == 5 and last["metrics"]["cost_usd"] > 0


def test_lists(server, http):
    headers = {"Authorization": f"Bearer {TEAM_KEY}"}
    providers = http.get(f"{server.url}/api/engine/providers", headers=headers, timeout=5).json()
    assert set(providers) == {"fake", "sim", "claude", "google", "azure"}
    models = http.get(f"{server.url}/api/engine/models", headers=headers, timeout=5).json()
    assert models["claude"] == {"name": "claude", "models": ["claude-test", "claude-then-gpt"]}
    assert "gpt-test" in models["fake"]["models"]
