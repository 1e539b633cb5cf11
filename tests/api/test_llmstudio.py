"""The LLMstudio engine API through Flask's test client, against the live fake upstream."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select

from facade.store.schema import usage_records
from tests.support import OTHER_KEY, TEAM_KEY, anthropic_config

CHAT = "/api/engine/chat"
BEARER = {"Authorization": f"Bearer {TEAM_KEY}"}


@pytest.fixture
def config_dict(fake):
    return anthropic_config(fake.url)


def ask(chat_input="hello there [[fake tokens=3]]", model="gpt-test", **fields) -> dict:
    return {"model": model, "chat_input": chat_input, **fields}


def lines(resp) -> list[dict]:
    body = resp.get_data()
    assert body.endswith(b"\n")
    return [orjson.loads(line) for line in body.split(b"\n") if line.strip()]


def test_chat_answers_in_llmstudio_shape(client, fake):
    resp = client.post(
        f"{CHAT}/fake",
        json=ask(parameters={"temperature": 0.2, "max_tokens": 50}, session_id="s-1"),
        headers={**BEARER, "X-Request-ID": "ls-1"},
    )
    assert resp.status_code == 200, resp.get_json()
    data = resp.get_json()
    assert data["chat_output"] == "tok0 tok1 tok2"
    assert data["chat_input"] == "hello there [[fake tokens=3]]"
    assert data["context"] == [{"role": "user", "content": "hello there [[fake tokens=3]]"}]
    assert (data["provider"], data["model"], data["session_id"]) == ("fake", "gpt-test", "s-1")
    assert data["parameters"] == {"temperature": 0.2, "max_tokens": 50}
    assert data["choices"][0]["message"]["content"] == "tok0 tok1 tok2"
    assert data["usage"]["completion_tokens"] == 3
    assert isinstance(data["timestamp"], float) and data["id"]
    metrics = data["metrics"]
    assert metrics["cost_usd"] > 0 and metrics["output_tokens"] == 3
    for name in (
        "latency_s",
        "time_to_first_token_s",
        "inter_token_latency_s",
        "tokens_per_second",
    ):
        assert name in metrics
    (seen,) = fake.requests("ls-1")
    assert seen["body"]["temperature"] == 0.2 and seen["body"]["max_tokens"] == 50


def test_api_key_in_the_body(client):
    resp = client.post(f"{CHAT}/fake", json=ask(api_key=TEAM_KEY))
    assert resp.status_code == 200
    resp = client.post(f"{CHAT}/fake", json=ask(api_key="sk-wrong-000000000000000"))
    assert resp.status_code == 401
    body = resp.get_json()
    assert body["error"]["type"] == "authentication_error" and body["detail"]
    assert client.post(f"{CHAT}/fake", json=ask()).status_code == 401


def test_chat_input_as_messages(client, fake):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi [[fake tokens=2]]"},
    ]
    resp = client.post(f"{CHAT}/fake", json=ask(messages), headers=BEARER)
    data = resp.get_json()
    assert data["chat_output"] == "tok0 tok1"
    assert data["context"] == messages and data["chat_input"] == messages


@pytest.mark.parametrize(
    ("provider", "model", "status"),
    [("nowhere", "gpt-test", 404), ("claude", "gpt-test", 404), ("fake", "nope", 404)],
)
def test_provider_and_model_must_match(client, provider, model, status):
    resp = client.post(f"{CHAT}/{provider}", json=ask(model=model), headers=BEARER)
    assert resp.status_code == status
    assert resp.get_json()["error"]["type"] in ("not_found", "model_not_found")


def test_the_key_may_not_use_the_model(client):
    resp = client.post(
        f"{CHAT}/claude",
        json=ask(model="claude-test"),
        headers={"Authorization": f"Bearer {OTHER_KEY}"},
    )
    assert resp.status_code == 403


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (ask(parameters={"temprature": 0.2}), "parameters.temprature"),
        (ask(parameters={"temperature": 7}), "parameters.temperature"),
        (ask(parameters={"stream": True}), "parameters.stream"),
        (ask(parameters={"messages": []}), "parameters.messages"),
        (ask([{"role": "robot", "content": "x"}]), "chat_input[0].role"),
        (ask([]), "chat_input"),
        ({**ask(), "is_streaming": True}, "is_streaming"),
        ({"chat_input": "x"}, "model"),
    ],
)
def test_bad_requests_name_the_field(client, fake, body, param):
    resp = client.post(f"{CHAT}/fake", json=body, headers={**BEARER, "X-Request-ID": "bad-ls"})
    assert resp.status_code == 400, resp.get_json()
    error = resp.get_json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert fake.requests("bad-ls") == []


def test_stream_is_ndjson(client):
    resp = client.post(
        f"{CHAT}/fake",
        json=ask("stream [[fake tokens=4]]", is_stream=True, session_id="s-2"),
        headers=BEARER,
    )
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/x-ndjson")
    rows = lines(resp)
    pieces = [r["chat_output_stream"] for r in rows[:-1]]
    assert "".join(pieces) == "tok0 tok1 tok2 tok3"
    assert all(r["metrics"] is None and r["session_id"] == "s-2" for r in rows[:-1])
    last = rows[-1]
    assert last["chat_output"] == "tok0 tok1 tok2 tok3"
    assert last["metrics"]["output_tokens"] == 4 and last["usage"]["completion_tokens"] == 4
    assert last["provider"] == "fake" and last["model"] == "gpt-test"


def test_stream_failure_after_the_first_line_is_an_error_line(client):
    resp = client.post(
        f"{CHAT}/fake", json=ask("[[fake tokens=6 midstream=3]]", is_stream=True), headers=BEARER
    )
    rows = lines(resp)
    assert rows[0]["chat_output_stream"]
    assert rows[-1]["error"]["type"] == "upstream_error" and rows[-1]["detail"]


def test_session_id_is_on_the_usage_row(app, client):
    client.post(
        f"{CHAT}/fake", json=ask(session_id="sess-42"), headers={**BEARER, "X-Request-ID": "u1"}
    )
    streamed = client.post(
        f"{CHAT}/claude",
        json=ask(model="claude-test", is_stream=True, session_id="sess-43"),
        headers={**BEARER, "X-Request-ID": "u2"},
    )
    streamed.get_data()
    client.post(
        "/v1/chat/completions",
        json={"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]},
        headers={**BEARER, "X-Request-ID": "u3"},
    )
    gw = app.extensions["facade"]
    gw.accounting.flush()
    with gw.store.engine.connect() as conn:
        rows = conn.execute(select(usage_records.c.request_id, usage_records.c.session_id)).all()
    assert sorted(rows) == [("u1", "sess-42"), ("u2", "sess-43"), ("u3", None)]


def test_lists_what_the_key_may_use(client):
    providers = client.get("/api/engine/providers", headers=BEARER)
    assert providers.status_code == 200
    assert providers.get_json() == ["fake", "sim", "claude", "google", "azure"]
    models = client.get("/api/engine/models", headers=BEARER).get_json()
    assert models["fake"] == {
        "name": "fake",
        "models": ["gpt-test", "fallback", "secret-model", "claude-then-gpt"],
    }
    assert models["claude"]["models"] == ["claude-test", "claude-then-gpt"]
    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    assert client.get("/api/engine/models", headers=other).get_json() == {
        "fake": {"name": "fake", "models": ["gpt-test"]}
    }
    assert client.get("/api/engine/providers", headers=other).get_json() == ["fake"]
    assert client.get("/api/engine/models").status_code == 401
