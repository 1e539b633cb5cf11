"""The Responses routes through Flask's test client: odd bodies are 400s naming the field."""

from __future__ import annotations

import pytest

from tests.support import TEAM_KEY

ODD = [
    {},
    {"input": None},
    {"input": {"role": "user"}},
    {"input": [None]},
    {"input": [[]]},
    {"input": [{"type": None}]},
    {"input": [{"role": {"x": 1}, "content": "x"}]},
    {"input": [{"role": "user", "content": [None]}]},
    {"input": [{"role": "user", "content": [{"type": "input_text", "text": 5}]}]},
    {"input": [{"type": "function_call_output", "call_id": "c", "output": [{"type": []}]}]},
    {"input": "x", "tools": {"type": "function"}},
    {"input": "x", "tools": [{"type": "function", "name": "f", "parameters": []}]},
    {"input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}},
    {"input": "x", "reasoning": []},
    {"input": "x", "max_output_tokens": 1e300},
    {"input": "x", "temperature": "hot"},
    {"input": "x", "previous_response_id": ["a"]},
    {"input": "x", "metadata": {"k": "v" * 600}},
    {"input": "x", "model": 5},
]


@pytest.mark.parametrize("body", ODD)
@pytest.mark.parametrize("path", ["/v1/responses", "/api/v1/responses"])
def test_odd_bodies_are_400s(client, fake, path, body):
    resp = client.post(path, json=body, headers={"Authorization": f"Bearer {TEAM_KEY}"})
    assert resp.status_code == 400, resp.json
    error = resp.json["error"] if path.startswith("/v1/") else resp.json["data"]["error"]
    assert error["type"] == "invalid_request_error"
    assert fake.requests() == []


def test_unknown_previous_response_and_missing_key(client, fake):
    headers = {"Authorization": f"Bearer {TEAM_KEY}"}
    resp = client.post(
        "/v1/responses",
        json={"model": "gpt-test", "input": "x", "previous_response_id": "resp_nope"},
        headers=headers,
    )
    assert resp.status_code == 404 and resp.json["error"]["param"] == "previous_response_id"
    assert client.get("/v1/responses/resp_nope", headers=headers).status_code == 404
    assert client.post("/v1/responses", json={"input": "x"}).status_code == 401
    assert fake.requests() == []


def test_passthrough_extras_are_not_responses_fields(client, fake):
    resp = client.post(
        "/v1/responses",
        json={"model": "gpt-test", "input": "x", "min_p": 0.1},
        headers={"Authorization": f"Bearer {TEAM_KEY}"},
    )
    assert resp.status_code == 400 and resp.json["error"]["param"] == "min_p"


def test_model_absent_lets_auto_pick(client, fake):
    resp = client.post(
        "/api/v1/responses",
        json={"input": "[[fake tokens=2]]"},
        headers={"Authorization": f"Bearer {TEAM_KEY}"},
    )
    assert resp.status_code == 200
    data = resp.json["data"]
    assert data["model"] == "gpt-test" and data["output_text"] == "tok0 tok1"


def test_max_messages_counts_input_items(client, fake, app):
    limit = app.extensions["facade"].config.max_messages
    items = [{"role": "user", "content": "x"}] * (limit + 1)
    resp = client.post(
        "/v1/responses",
        json={"model": "gpt-test", "input": items},
        headers={"Authorization": f"Bearer {TEAM_KEY}"},
    )
    assert resp.status_code == 400 and resp.json["error"]["param"] == "input"
    assert fake.requests() == []
