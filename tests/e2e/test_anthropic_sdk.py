"""The official Anthropic Python SDK, unchanged, against gunicorn: /v1/messages.

Both kinds of target: an OpenAI-compatible one (the request is translated to chat and the
answer back) and an Anthropic-kind one (the request is passed natively to the wire fake).
Answers, typed stream events and errors must be what the SDK expects: each error status
arrives as the SDK's own exception class, and `messages.stream` accumulates a final message.
"""

from __future__ import annotations

import anthropic
import httpx2
import pytest
from anthropic import Anthropic

from tests.support import (
    LIMITED_KEY,
    OTHER_KEY,
    TEAM_KEY,
    UPSTREAM_SECRET,
    anthropic_config,
    start_gunicorn,
)

TARGETS = ("gpt-test", "claude-test")  # OpenAI-compatible, Anthropic-kind
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def server(fake_upstream, tmp_path_factory):
    srv = start_gunicorn(tmp_path_factory.mktemp("anthropic"), anthropic_config(fake_upstream.url))
    yield srv
    assert srv.stop() == 0
    log = srv.log()
    for secret in (UPSTREAM_SECRET, TEAM_KEY, OTHER_KEY, LIMITED_KEY):
        assert secret not in log


def sdk(server, key: str = TEAM_KEY, **kwargs) -> Anthropic:
    # trust_env off: an HTTP(S)_PROXY in the environment must not reroute 127.0.0.1.
    http = httpx2.Client(trust_env=False, timeout=20)
    if "auth_token" in kwargs:
        return Anthropic(base_url=server.url, max_retries=0, http_client=http, **kwargs)
    return Anthropic(base_url=server.url, api_key=key, max_retries=0, http_client=http, **kwargs)


@pytest.fixture
def client(server):
    c = sdk(server)
    yield c
    c.close()


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("model", TARGETS)
def test_create(client, fake, model):
    message = client.messages.create(
        model=model,
        max_tokens=64,
        messages=user("hello there [[fake tokens=3]]"),
        extra_headers={"X-Request-ID": f"create-{model}"},
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.model == model
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "tok0 tok1 tok2"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 3)
    assert fake.requests(f"create-{model}")


@pytest.mark.parametrize("model", ["gemini-test", "azure-test", "sim-model"])
def test_every_other_kind_of_provider(client, model):
    message = client.messages.create(
        model=model, max_tokens=64, system="Be brief.", messages=user("hi [[fake tokens=3]]")
    )
    assert message.content[0].text and message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.output_tokens > 0 and message.model == model
    with client.messages.stream(
        model=model, max_tokens=64, messages=user("stream [[fake tokens=3]]")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].text == text and final.usage.output_tokens > 0


@pytest.mark.parametrize("model", TARGETS)
def test_max_tokens_is_the_cap(client, fake, model):
    message = client.messages.create(
        model=model,
        max_tokens=2,
        messages=user("[[fake tokens=9]]"),
        extra_headers={"X-Request-ID": f"cap-{model}"},
    )
    (seen,) = fake.requests(f"cap-{model}")
    assert seen["body"]["max_tokens"] == 2
    if model == "claude-test":  # the Anthropic fake honours the cap, as Claude does
        assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 2


def test_native_pass_keeps_what_claude_understands(client, fake):
    """An Anthropic-kind target gets the Messages body as sent: cache_control, top_k and
    metadata survive, and nothing Facade does not know is added."""
    client.messages.create(
        model="claude-test",
        max_tokens=64,
        system=[{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        messages=user("hi [[fake tokens=2]]"),
        metadata={"user_id": "u-42"},
        extra_body={"top_k": 5},  # this SDK has no keyword for it any more
        extra_headers={"X-Request-ID": "native-1"},
    )
    (seen,) = fake.requests("native-1")
    assert seen["path"] == "/v1/messages"
    body = seen["body"]
    assert body["model"] == "claude-up"
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["top_k"] == 5 and body["metadata"] == {"user_id": "u-42"}
    assert seen["headers"]["x-api-key"] == UPSTREAM_SECRET  # ours, never the caller's key


def test_translated_for_an_openai_target(client, fake):
    client.messages.create(
        model="gpt-test",
        max_tokens=64,
        system="Be brief.",
        messages=user("hi [[fake tokens=2]]"),
        stop_sequences=["END"],
        metadata={"user_id": "u-7"},
        extra_headers={"X-Request-ID": "translated-1"},
    )
    (seen,) = fake.requests("translated-1")
    body = seen["body"]
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["stop"] == ["END"] and body["user"] == "u-7" and body["max_tokens"] == 64


@pytest.mark.parametrize("model", TARGETS)
def test_stream(client, model):
    with client.messages.stream(
        model=model, max_tokens=64, messages=user("stream [[fake tokens=5 drip=0.01 split]]")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "tok0 tok1 tok2 tok3 tok4"
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 5
    assert final.model == model


@pytest.mark.parametrize("model", TARGETS)
def test_raw_stream_events_in_order(client, model):
    events = list(
        client.messages.create(
            model=model, max_tokens=64, messages=user("[[fake tokens=2]]"), stream=True
        )
    )
    kinds = [e.type for e in events]  # the SDK drops ping events itself
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 1


@pytest.mark.parametrize("model", [*TARGETS, "gemini-test"])
def test_tool_round_trip(client, fake, model):
    first = client.messages.create(
        model=model,
        max_tokens=256,
        tools=[WEATHER],
        tool_choice={"type": "auto"},
        messages=user("weather in Paris? [[fake tool=get_weather]]"),
    )
    assert first.stop_reason == "tool_use"
    (call,) = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "get_weather" and call.input == {"city": "Paris"}
    second = client.messages.create(
        model=model,
        max_tokens=256,
        tools=[WEATHER],
        messages=[
            *user("weather in Paris? [[fake tool=get_weather]]"),
            {"role": "assistant", "content": first.content},  # the SDK's own objects
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
            },
        ],
        extra_headers={"X-Request-ID": f"tool-{model}"},
    )
    assert second.stop_reason == "end_turn" and second.content[0].type == "text"
    (seen,) = fake.requests(f"tool-{model}")
    if model == "claude-test":
        assert seen["body"]["messages"][2]["content"][0]["tool_use_id"] == call.id
    elif model == "gpt-test":
        assert seen["body"]["messages"][2] == {
            "role": "tool",
            "tool_call_id": call.id,
            "content": "sunny",
        }
    else:  # Gemini's functionResponse answers the call by name
        contents = seen["body"]["contents"]
        assert contents[-1]["parts"][0]["functionResponse"]["name"] == "get_weather"


@pytest.mark.parametrize("model", TARGETS)
def test_streamed_tool_call(client, model):
    with client.messages.stream(
        model=model,
        max_tokens=256,
        tools=[WEATHER],
        messages=user("weather in Paris? [[fake tool=get_weather]]"),
    ) as stream:
        kinds = {e.type for e in stream}
        final = stream.get_final_message()
    assert "input_json" in kinds  # the SDK's own event for input_json_delta
    assert final.stop_reason == "tool_use"
    (call,) = [b for b in final.content if b.type == "tool_use"]
    assert (call.name, call.input) == ("get_weather", {"city": "Paris"})


@pytest.mark.parametrize("model", TARGETS)
def test_tool_result_turn_reaches_the_upstream(client, fake, model):
    """A conversation that holds a finished tool call goes to either kind of target."""
    client.messages.create(
        model=model,
        max_tokens=64,
        tools=[WEATHER],
        messages=[
            *user("weather?"),
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                    {"type": "text", "text": "thanks [[fake tokens=2]]"},
                ],
            },
        ],
        extra_headers={"X-Request-ID": f"toolturn-{model}"},
    )
    (seen,) = fake.requests(f"toolturn-{model}")
    messages = seen["body"]["messages"]
    if model == "gpt-test":
        assert messages[1]["tool_calls"][0]["function"]["name"] == "get_weather"
        assert messages[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"}
        assert messages[3]["role"] == "user"
    else:
        assert messages[1]["content"][1]["type"] == "tool_use"
        assert messages[2]["content"][0]["type"] == "tool_result"


@pytest.mark.parametrize("model", TARGETS)
def test_count_tokens(client, model):
    counted = client.messages.count_tokens(
        model=model,
        system="Be brief.",
        messages=user("count these four words"),
        tools=[WEATHER],
    )
    if model == "claude-test":  # the upstream's count: the fake adds 1000 to its own
        assert counted.input_tokens == 1000 + 6  # words: 2 of system, 4 of the message
    else:  # Facade's estimate
        assert 5 < counted.input_tokens < 100


def test_bearer_auth_works_too(server):
    c = sdk(server, auth_token=TEAM_KEY)
    try:
        message = c.messages.create(
            model="gpt-test", max_tokens=16, messages=user("[[fake tokens=1]]")
        )
        assert message.content[0].text == "tok0"
    finally:
        c.close()


def test_authentication_error(server):
    c = sdk(server, key="sk-wrong-key-000000000000")
    try:
        with pytest.raises(anthropic.AuthenticationError) as err:
            c.messages.create(model="gpt-test", max_tokens=16, messages=user("hi"))
        assert err.value.status_code == 401
        assert err.value.body["error"]["type"] == "authentication_error"
    finally:
        c.close()


def test_not_found_error(client):
    with pytest.raises(anthropic.NotFoundError) as err:
        client.messages.create(model="no-such-model", max_tokens=16, messages=user("hi"))
    assert err.value.body["error"]["type"] == "not_found_error"


def test_permission_error(server):
    c = sdk(server, key=OTHER_KEY)
    try:
        with pytest.raises(anthropic.PermissionDeniedError):
            c.messages.create(model="claude-test", max_tokens=16, messages=user("hi"))
    finally:
        c.close()


def test_rate_limit_error(server):
    c = sdk(server, key=LIMITED_KEY)
    try:
        c.messages.create(model="gpt-test", max_tokens=16, messages=user("[[fake tokens=1]]"))
        with pytest.raises(anthropic.RateLimitError) as err:
            c.messages.create(model="gpt-test", max_tokens=16, messages=user("[[fake tokens=1]]"))
        assert err.value.body["error"]["type"] == "rate_limit_error"
        assert err.value.response.headers["retry-after"]
    finally:
        c.close()


def test_unknown_field_is_a_bad_request_naming_it(client, fake):
    with pytest.raises(anthropic.BadRequestError) as err:
        client.messages.create(
            model="claude-test",
            max_tokens=16,
            messages=user("hi"),
            extra_body={"temperatur": 0.5},
            extra_headers={"X-Request-ID": "unknown-1"},
        )
    assert "temperatur" in err.value.body["error"]["message"]
    assert fake.requests("unknown-1") == []  # never forwarded


def test_upstream_failure_mid_stream_is_an_error_event(client):
    with pytest.raises(anthropic.APIStatusError) as err:
        with client.messages.stream(
            model="claude-test", max_tokens=64, messages=user("[[fake tokens=6 midstream=4]]")
        ) as stream:
            for _ in stream.text_stream:
                pass
    assert err.value.body["type"] == "error"
    assert err.value.body["error"]["type"] == "api_error"


@pytest.mark.parametrize("model", TARGETS)
def test_claude_code_like_session(server, fake, model):
    """What Claude Code sends: x-api-key, cached system blocks, tools, streaming, a
    tool_result turn, metadata.user_id, beta headers; both turns stream to the end."""
    c = sdk(server, default_headers={"anthropic-beta": "claude-code-20250219"})
    system = [
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Work in /repo.", "cache_control": {"type": "ephemeral"}},
    ]
    tools = [
        {**WEATHER, "cache_control": {"type": "ephemeral"}},
        {
            "name": "Bash",
            "description": "Run a command.",
            "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
        },
    ]
    history = [
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "what is the weather? [[fake tokens=3]]",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
        }
    ]
    try:
        with c.messages.stream(
            model=model,
            max_tokens=512,
            system=system,
            tools=tools,
            messages=history,
            metadata={"user_id": "user_abc_account_1_session_2"},
            extra_body={"temperature": 1},
        ) as stream:
            first = stream.get_final_message()
        assert first.content[0].text == "tok0 tok1 tok2"
        history += [
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {
                "role": "user",
                "content": [{"type": "text", "text": "now call it"}],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_9",
                        "name": "Bash",
                        "input": {"command": "ls"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_9",
                        "content": [{"type": "text", "text": "README.md"}],
                        "is_error": False,
                    },
                    {"type": "text", "text": "go on [[fake tokens=4]]"},
                ],
            },
        ]
        with c.messages.stream(
            model=model, max_tokens=512, system=system, tools=tools, messages=history
        ) as stream:
            events = [e.type for e in stream]
            second = stream.get_final_message()
        assert events[0] == "message_start" and events[-1] == "message_stop"
        assert second.content[0].text == "tok0 tok1 tok2 tok3"
        assert second.usage.output_tokens == 4
    finally:
        c.close()
