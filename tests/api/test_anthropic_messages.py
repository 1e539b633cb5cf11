"""POST /v1/messages and /v1/messages/count_tokens through Flask's test client, against the
live fake upstream: auth, strict bodies, Anthropic's errors and events, the pipeline's parts
(fallback, budgets, usage rows) and what each kind of target receives."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select

from facade.store.schema import usage_records
from tests.support import OTHER_KEY, TEAM_KEY, anthropic_config

URL = "/v1/messages"
COUNT = "/v1/messages/count_tokens"
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    "AAAABJRU5ErkJggg=="
)
X_API_KEY = {"x-api-key": TEAM_KEY, "anthropic-version": "2023-06-01"}


POOR_KEY = "sk-poor-SECRET-0123456789abcdef"


@pytest.fixture
def config_dict(fake):
    config = anthropic_config(fake.url)
    config["keys"].append({"name": "poor", "key": POOR_KEY, "models": ["*"], "budget_usd": 1e-9})
    return config


def ask(text: str = "hello there", model: str = "gpt-test", **fields) -> dict:
    return {
        "model": model,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
        **fields,
    }


def sse(resp) -> list[tuple[str, dict]]:
    body = resp.get_data()
    assert body.endswith(b"\n\n")
    out = []
    for block in body.split(b"\n\n")[:-1]:
        if block.startswith(b":"):
            continue  # keep-alive comment
        name, data = block.split(b"\n")
        assert name.startswith(b"event: ") and data.startswith(b"data: "), block
        event = orjson.loads(data[6:])
        assert event["type"] == name[7:].decode()
        out.append((event["type"], event))
    return out


def test_x_api_key_and_bearer_both_authenticate(client):
    assert client.post(URL, json=ask(), headers=X_API_KEY).status_code == 200
    bearer = {"Authorization": f"Bearer {TEAM_KEY}"}
    assert client.post(URL, json=ask(), headers=bearer).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-api-key": "sk-nope-0000000000000000"}, {"Authorization": "Basic abc"}],
)
def test_authentication_errors_in_anthropic_shape(client, headers):
    resp = client.post(URL, json=ask(), headers=headers)
    assert resp.status_code == 401
    body = resp.get_json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    assert body["request_id"] == resp.headers["X-Request-ID"]
    assert TEAM_KEY not in resp.get_data(as_text=True)


def test_x_api_key_is_only_for_the_anthropic_route(client):
    resp = client.post("/v1/chat/completions", json={}, headers=X_API_KEY)
    assert resp.status_code == 401
    assert "error" in resp.get_json() and "type" not in resp.get_json()  # OpenAI's shape


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({**ask(), "max_token": 5}, "max_token"),
        ({k: v for k, v in ask().items() if k != "max_tokens"}, "max_tokens"),
        (ask(temperature=1.5), "temperature"),
        (ask(stop_sequences="END"), "stop_sequences"),
        (ask(tool_choice={"type": "any"}), "tool_choice"),
        (ask(thinking={"type": "enabled"}), "thinking.budget_tokens"),
        (ask(thinking={"type": "enabled", "budget_tokens": 2048}), "thinking.budget_tokens"),
        (ask(metadata={"user_id": "u", "tenant": "t"}), "metadata.tenant"),
        (ask(tools=[{"name": "x", "input_schema": {}, "type": "web_search_20250305"}]), "tools"),
        (
            {**ask(), "messages": [{"role": "user", "content": [{"type": "audio", "x": 1}]}]},
            "messages[0].content[0].type",
        ),
        (
            {
                **ask(),
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "a", "colour": "red"}]}
                ],
            },
            "messages[0].content[0].colour",
        ),
        ({**ask(), "messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        (
            {**ask(), "messages": [{"role": "assistant", "content": [{"type": "tool_result"}]}]},
            "messages[0].content[0].type",
        ),
    ],
)
def test_bad_bodies_are_400s_naming_the_field(client, fake, body, param):
    resp = client.post(URL, json=body, headers={**X_API_KEY, "X-Request-ID": "bad-1"})
    assert resp.status_code == 400, resp.get_json()
    error = resp.get_json()["error"]
    assert error["type"] == "invalid_request_error"
    assert param in error["message"]
    assert fake.requests("bad-1") == []  # nothing unknown is ever forwarded


def test_model_errors(client):
    resp = client.post(URL, json=ask(model="nope"), headers=X_API_KEY)
    assert (resp.status_code, resp.get_json()["error"]["type"]) == (404, "not_found_error")
    other = {"x-api-key": OTHER_KEY}
    resp = client.post(URL, json=ask(model="claude-test"), headers=other)
    assert (resp.status_code, resp.get_json()["error"]["type"]) == (403, "permission_error")


def test_upstream_errors_keep_anthropic_types(client):
    resp = client.post(URL, json=ask("[[fake status=429]]"), headers=X_API_KEY)
    assert (resp.status_code, resp.get_json()["error"]["type"]) == (429, "rate_limit_error")
    resp = client.post(URL, json=ask("[[fake status=400]]", model="claude-test"), headers=X_API_KEY)
    body = resp.get_json()
    assert (resp.status_code, body["error"]["type"]) == (400, "invalid_request_error")
    assert "prompt is too long" in body["error"]["message"]  # the upstream's own message
    resp = client.post(URL, json=ask("[[fake status=500]]"), headers=X_API_KEY)
    assert (resp.status_code, resp.get_json()["error"]["type"]) == (502, "api_error")


def test_thinking_goes_to_providers_that_reason_only(client, fake):
    thinking = {"type": "enabled", "budget_tokens": 2048}
    resp = client.post(
        URL, json=ask(model="sim-model", max_tokens=4096, thinking=thinking), headers=X_API_KEY
    )
    assert resp.status_code == 400
    assert "thinking" in resp.get_json()["error"]["message"]
    for model in ("gpt-test", "claude-test"):
        rid = f"think-{model}"
        resp = client.post(
            URL,
            json=ask("[[fake tokens=2]]", model=model, max_tokens=4096, thinking=thinking),
            headers={**X_API_KEY, "X-Request-ID": rid},
        )
        assert resp.status_code == 200, resp.get_json()
        (seen,) = fake.requests(rid)
        if model == "claude-test":
            assert seen["body"]["thinking"] == thinking  # native
        else:
            assert seen["body"]["reasoning_effort"] == "low"


def test_images_and_tools_reach_an_openai_target_translated(client, fake):
    body = ask(
        tools=[
            {
                "name": "get_weather",
                "description": "Weather.",
                "input_schema": {"type": "object", "properties": {}},
                "cache_control": {"type": "ephemeral"},
            }
        ],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        top_k=3,
    )
    body["messages"] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is in these?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            ],
        }
    ]
    resp = client.post(URL, json=body, headers={**X_API_KEY, "X-Request-ID": "img-1"})
    assert resp.status_code == 200, resp.get_json()
    (seen,) = fake.requests("img-1")
    sent = seen["body"]
    parts = sent["messages"][0]["content"]
    assert parts[1] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    assert parts[2]["image_url"]["url"] == "https://example.com/a.png"
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tool_choice"] == "required" and sent["parallel_tool_calls"] is False
    assert sent["top_k"] == 3


def test_non_streamed_answer_is_a_message(client):
    resp = client.post(URL, json=ask("hi [[fake tokens=3]]"), headers=X_API_KEY)
    message = resp.get_json()
    assert message["type"] == "message" and message["id"].startswith("msg_")
    assert message["content"] == [{"type": "text", "text": "tok0 tok1 tok2"}]
    assert message["stop_reason"] == "end_turn" and message["stop_sequence"] is None
    assert message["usage"] == {
        "input_tokens": 3,  # words, in the fake
        "output_tokens": 3,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    assert message["metrics"]["cost_usd"] > 0
    capped = client.post(URL, json=ask("[[fake tokens=9]]", max_tokens=2), headers=X_API_KEY)
    assert capped.status_code == 200


@pytest.mark.parametrize("model", ["gpt-test", "claude-test"])
def test_stream_events_in_order(client, model):
    resp = client.post(
        URL, json=ask("[[fake tokens=3]]", model=model, stream=True), headers=X_API_KEY
    )
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    events = sse(resp)
    kinds = [k for k, _ in events]
    assert kinds[0] == "message_start"
    assert kinds[1:3] in (["ping", "content_block_start"], ["content_block_start", "ping"])
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = [e["delta"]["text"] for k, e in events if k == "content_block_delta"]
    assert "".join(deltas) == "tok0 tok1 tok2"
    assert events[0][1]["message"]["model"] == model
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == "end_turn"
    assert final["usage"]["output_tokens"] == 3


def test_stream_failure_after_the_first_byte_is_an_error_event(client):
    resp = client.post(
        URL, json=ask("[[fake tokens=6 midstream=3]]", stream=True), headers=X_API_KEY
    )
    assert resp.status_code == 200
    events = sse(resp)
    assert events[0][0] == "message_start"
    assert events[-1][0] == "error"
    assert events[-1][1]["error"]["type"] == "api_error"
    assert "message_stop" not in [k for k, _ in events]


def test_stream_error_before_the_first_byte_is_plain_json(client):
    resp = client.post(URL, json=ask("[[fake status=429]]", stream=True), headers=X_API_KEY)
    assert resp.status_code == 429
    assert resp.get_json()["error"]["type"] == "rate_limit_error"


def test_falls_back_from_an_anthropic_target_to_an_openai_one(client, fake):
    for stream in (False, True):
        resp = client.post(
            URL,
            json=ask("[[fake tokens=2]]", model="claude-then-gpt", stream=stream),
            headers=X_API_KEY,
        )
        assert resp.status_code == 200
        if stream:
            text = "".join(e["delta"]["text"] for k, e in sse(resp) if k == "content_block_delta")
        else:
            text = resp.get_json()["content"][0]["text"]
            assert resp.get_json()["metrics"]["attempts"] == 2
        assert text == "tok0 tok1"


def test_usage_rows_and_count_tokens_costs_nothing(app, client):
    rid = "usage-1"
    client.post(URL, json=ask("[[fake tokens=2]]"), headers={**X_API_KEY, "X-Request-ID": rid})
    streamed = client.post(
        URL,
        json=ask("[[fake tokens=2]]", model="claude-test", stream=True),
        headers={**X_API_KEY, "X-Request-ID": "usage-2"},
    )
    streamed.get_data()  # the relay settles when the stream ends
    counted = client.post(
        COUNT,
        json={"model": "claude-test", "messages": ask()["messages"]},
        headers={**X_API_KEY, "X-Request-ID": "usage-3"},
    )
    assert counted.status_code == 200 and counted.get_json()["input_tokens"] >= 1000
    gw = app.extensions["facade"]
    gw.accounting.flush()
    with gw.store.engine.connect() as conn:
        rows = conn.execute(
            select(usage_records.c.request_id, usage_records.c.model, usage_records.c.output_tokens)
        ).all()
    assert sorted(rows) == [("usage-1", "gpt-test", 2), ("usage-2", "claude-test", 2)]


def test_count_tokens_for_an_openai_target_is_an_estimate(client, fake):
    body = {"model": "gpt-test", "messages": ask("a b c d e f g h")["messages"]}
    resp = client.post(COUNT, json=body, headers={**X_API_KEY, "X-Request-ID": "count-1"})
    assert resp.status_code == 200
    assert 0 < resp.get_json()["input_tokens"] < 50
    assert fake.requests("count-1") == []
    resp = client.post(COUNT, json={**body, "max_tokens": 5}, headers=X_API_KEY)
    assert resp.status_code == 400  # count_tokens takes no output settings


def test_http_errors_in_anthropic_shape(client):
    big = ask("x" * 70000)  # over the config's 64 KiB limit
    resp = client.post(URL, json=big, headers=X_API_KEY)
    assert (resp.status_code, resp.get_json()["error"]["type"]) == (413, "request_too_large")
    resp = client.post(URL, data="hi", headers={**X_API_KEY, "Content-Type": "text/plain"})
    assert (resp.status_code, resp.get_json()["error"]["type"]) == (415, "invalid_request_error")
    resp = client.post(
        URL, data="{not json", headers={**X_API_KEY, "Content-Type": "application/json"}
    )
    assert (resp.status_code, resp.get_json()["error"]["type"]) == (400, "invalid_request_error")
    resp = client.get(URL, headers=X_API_KEY)
    assert resp.status_code == 405 and resp.get_json()["type"] == "error"


def test_budget_refusal_is_a_rate_limit_error(client, fake):
    headers = {"x-api-key": POOR_KEY, "X-Request-ID": "poor-1"}
    resp = client.post(URL, json=ask(model="claude-test"), headers=headers)
    assert resp.status_code == 429
    error = resp.get_json()["error"]
    assert error["type"] == "rate_limit_error" and "budget" in error["message"]
    assert fake.requests("poor-1") == []
