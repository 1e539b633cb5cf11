"""No 500 from client input, and cheap refusals before dear work (Flask's test client).

Out-of-range integers, JSON nested past what can be written back, dates the store cannot
hold and wrong methods are 400/405 answers naming what is wrong; a key already over its rpm
is refused before its body is even read; too many messages are refused before validation.
"""

from __future__ import annotations

import json

import pytest

from tests.support import TEAM_KEY

URL = "/api/v1/chat/completions"
LIMITED_KEY = "sk-limited-SECRET-0a1b2c3d"


@pytest.fixture
def config_dict(config_dict):
    config_dict["keys"].append({"name": "limited", "key": LIMITED_KEY, "models": ["*"], "rpm": 1})
    config_dict["limits"]["max_messages"] = 50
    return config_dict


def chat(**fields) -> dict:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], **fields}


def deep(levels: int) -> dict:
    node: dict = {"type": "string"}
    for _ in range(levels):
        node = {"type": "object", "properties": {"x": node}}
    return node


def post(client, url: str, body: dict, headers: dict):
    """POST with the stdlib's encoder: the test client's (orjson) cannot write what is tested."""
    data = json.dumps(body)
    return client.post(url, data=data, headers={**headers, "Content-Type": "application/json"})


def error_of(resp) -> tuple[int, str | None, str]:
    body = resp.get_json()
    return resp.status_code, body["data"]["error"]["param"], body["message"]


@pytest.mark.parametrize("field", ["max_tokens", "seed", "n", "top_logprobs", "top_k"])
@pytest.mark.parametrize("value", [2**63, 2**64, 2**64 + 1, 10**30, -(2**64)])
def test_integers_past_64_bits_are_400s_naming_the_field(client, auth, field, value):
    extra = {"logprobs": True} if field == "top_logprobs" else {}
    resp = post(client, URL, chat(**{field: value, **extra}), auth)
    status, param, message = error_of(resp)
    assert (status, param) == (400, field), message
    assert field in message


def test_a_64_bit_seed_is_forwarded(client, auth, fake):
    resp = client.post(URL, json=chat(seed=2**63 - 1), headers=auth)
    assert resp.status_code == 200


def test_embedding_token_ids_past_64_bits_are_400s(client, auth):
    raw = '{"model": "gpt-test", "input": [1, 18446744073709551616]}'
    resp = client.post(
        "/api/v1/embeddings", data=raw, headers={**auth, "Content-Type": "application/json"}
    )
    assert error_of(resp)[:2] == (400, "input")


@pytest.mark.parametrize("levels", [40, 130, 400])
def test_a_deep_response_format_schema_is_forwarded_or_a_400_naming_it(client, auth, levels):
    body = chat(
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "d", "schema": deep(levels)},
        }
    )
    resp = post(client, URL, body, auth)
    if resp.status_code != 200:
        assert error_of(resp)[:2] == (400, "response_format")


@pytest.mark.parametrize(
    "field, value",
    [
        ("tools", [{"type": "function", "function": {"name": "f", "parameters": deep(300)}}]),
        ("metadata", {"k": "v", "deep": deep(300)}),
        (
            "messages",
            [{"role": "user", "content": [{"type": "text", "text": "x", "x": deep(300)}]}],
        ),
    ],
)
def test_deep_json_anywhere_is_never_a_500(client, auth, field, value):
    resp = post(client, URL, {**chat(), field: value}, auth)
    assert error_of(resp)[:2] == (400, field)


def test_too_many_messages_are_a_400_naming_messages(client, auth):
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "x"}] * 51}
    status, param, message = error_of(client.post(URL, json=body, headers=auth))
    assert (status, param) == (400, "messages") and "50" in message
    body["messages"] = body["messages"][:50]
    assert client.post(URL, json=body, headers=auth).status_code == 200


def test_a_key_over_its_rpm_is_refused_before_its_body_is_read(client):
    headers = {"Authorization": f"Bearer {LIMITED_KEY}"}
    assert client.post(URL, json=chat(), headers=headers).status_code == 200
    # Not JSON at all: over its rpm, the key gets its 429 before the body is looked at.
    resp = client.post(
        URL, data=b"{not json", headers={**headers, "Content-Type": "application/json"}
    )
    assert resp.status_code == 429
    assert resp.get_json()["data"]["error"]["type"] == "rate_limit_exceeded"
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    # Another key is not affected, and the refused request was not counted twice.
    assert (
        client.post(URL, json=chat(), headers={"Authorization": f"Bearer {TEAM_KEY}"}).status_code
        == 200
    )


def test_every_405_names_the_allowed_methods(client, auth):
    for method, path, allowed in (
        ("get", URL, "POST"),
        ("put", "/healthz", "GET"),
        ("delete", "/api/v1/models", "GET"),
    ):
        resp = getattr(client, method)(path, headers=auth)
        assert resp.status_code == 405, path
        assert allowed in [m.strip() for m in resp.headers["Allow"].split(",")]
