"""The real HTTP providers for azure, anthropic and gemini against the live fake upstream.

No code path of ours is faked: `HTTPProvider` + the protocol module send real requests over
a socket to the fake process, which speaks each vendor's wire format and checks what the
vendor checks. What the fake recorded proves the address, headers and body we sent.
"""

from __future__ import annotations

import json
import uuid

import pytest

from facade.errors import UpstreamError, UpstreamStatusError
from facade.providers import anthropic, azure, gemini
from facade.providers.base import ChatCall, EmbeddingCall
from facade.providers.http import HTTPProvider
from tests.builders import model_config, provider_config
from tests.fakes.upstream import UNICODE_TOKENS

SECRET = "vendor-SECRET-5d2e"
KINDS = ("azure", "anthropic", "gemini")
MODULES = {"azure": azure, "anthropic": anthropic, "gemini": gemini}
MODEL = model_config("wired", context_window=100000, max_output_tokens=321)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def base_url(kind: str, fake_url: str) -> str:
    # anthropic is given the `/v1` many people paste: the module must not double it
    return {"azure": fake_url, "anthropic": f"{fake_url}/v1", "gemini": f"{fake_url}/v1beta"}[kind]


def make_provider(kind: str, fake_url: str) -> HTTPProvider:
    config = provider_config(
        f"wired-{kind}",
        kind,
        base_url=base_url(kind, fake_url),
        api_key=SECRET,
        connect_timeout_s=2.0,
        read_timeout_s=5.0,
        api_version="2024-10-21" if kind == "azure" else None,
    )
    return HTTPProvider(config, MODULES[kind], pool_size=10)


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def provider(kind, fake):
    p = make_provider(kind, fake.url)
    yield p
    p.close()


def chat(text: str, stream: bool = False, max_tokens: int | None = None, **body) -> ChatCall:
    body.setdefault("messages", [{"role": "user", "content": text}])
    return ChatCall(body, MODEL, "up-model", max_tokens, f"wire-{uuid.uuid4().hex}", stream)


def collect(provider: HTTPProvider, call: ChatCall) -> list[dict]:
    stream = provider.stream(call)
    try:
        return list(stream)
    finally:
        stream.close()


def text_of(chunks: list[dict]) -> str:
    return "".join(
        choice["delta"].get("content") or "" for chunk in chunks for choice in chunk["choices"]
    )


def tool_calls_of(chunks: list[dict]) -> dict[int, dict]:
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for delta in choice["delta"].get("tool_calls") or ():
                entry = calls.setdefault(delta["index"], {"arguments": ""})
                if delta.get("id"):
                    entry.update(id=delta["id"], name=delta["function"]["name"])
                entry["arguments"] += delta["function"].get("arguments") or ""
    return calls


# -- every kind ---------------------------------------------------------------------------


def test_complete_gives_text_and_exact_usage(provider):
    answer = provider.complete(chat("hello there [[fake tokens=3]]"))
    assert answer["object"] == "chat.completion"
    choice = answer["choices"][0]
    assert choice["message"]["content"] == "tok0 tok1 tok2"
    assert choice["finish_reason"] == "stop"
    # the fakes count prompt words: "hello there [[fake tokens=3]]" is four
    assert answer["usage"] == {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}


def test_stream_gives_role_text_finish_and_exact_usage_last(provider):
    chunks = collect(provider, chat("hello there [[fake tokens=4]]", stream=True))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert text_of(chunks) == "tok0 tok1 tok2 tok3"
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}


def test_awkward_bytes_arrive_intact(provider):
    chunks = collect(provider, chat("x [[fake tokens=6 unicode split crlf]]", stream=True))
    assert text_of(chunks) == " ".join(UNICODE_TOKENS[:6])
    assert chunks[-1]["usage"]["completion_tokens"] == 6


def test_a_vendor_error_mid_stream_raises(provider):
    stream = provider.stream(chat("x [[fake midstream=3]]", stream=True))
    try:
        with pytest.raises(UpstreamError) as err:
            list(stream)
    finally:
        stream.close()
    assert "mid-stream" in err.value.message


def test_a_stream_cut_off_raises(provider):
    with pytest.raises(UpstreamError, match="ended before"):
        collect(provider, chat("x [[fake cut=3]]", stream=True))


@pytest.mark.parametrize("status", [400, 429])
def test_vendor_4xx_keeps_its_status_and_message(provider, status):
    with pytest.raises(UpstreamStatusError) as err:
        provider.complete(chat(f"x [[fake status={status}]]"))
    assert err.value.status == status
    assert "(fake)" in err.value.message


def test_vendor_5xx_and_bad_json_are_upstream_errors(provider):
    with pytest.raises(UpstreamError) as err:
        provider.complete(chat("x [[fake status=500]]"))
    assert err.value.status == 502
    with pytest.raises(UpstreamError, match="invalid JSON"):
        provider.complete(chat("x [[fake badjson]]"))


# -- azure --------------------------------------------------------------------------------


def test_azure_request_shape(fake):
    provider = make_provider("azure", fake.url)
    try:
        call = chat("hi", stream=True)
        collect(provider, call)
    finally:
        provider.close()
    (seen,) = fake.requests(call.request_id)
    assert seen["path"] == "/openai/deployments/up-model/chat/completions"
    assert seen["query"] == {"api-version": ["2024-10-21"]}
    assert seen["headers"]["api-key"] == SECRET
    assert "authorization" not in seen["headers"]
    assert "model" not in seen["body"]
    assert seen["body"]["stream_options"] == {"include_usage": True}


def test_azure_embeddings(fake):
    provider = make_provider("azure", fake.url)
    try:
        call = EmbeddingCall({"input": ["one two", "three"]}, MODEL, "emb", "wire-emb-az")
        out = provider.embed(call)
    finally:
        provider.close()
    assert [d["index"] for d in out["data"]] == [0, 1]
    assert out["usage"]["prompt_tokens"] == 3
    (seen,) = fake.requests("wire-emb-az")
    assert seen["path"] == "/openai/deployments/emb/embeddings"


# -- anthropic ----------------------------------------------------------------------------


@pytest.fixture
def claude(fake):
    p = make_provider("anthropic", fake.url)
    yield p
    p.close()


def test_anthropic_request_shape(claude, fake):
    call = chat(
        "hi",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        user="u-7",
        stop="END",
    )
    claude.complete(call)
    (seen,) = fake.requests(call.request_id)
    assert seen["path"] == "/v1/messages"
    assert seen["headers"]["x-api-key"] == SECRET
    assert seen["headers"]["anthropic-version"] == "2023-06-01"
    assert "authorization" not in seen["headers"]
    body = seen["body"]
    assert body["max_tokens"] == 321  # the model's cap: Anthropic requires one
    assert body["system"] == "be brief"
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u-7"}


def test_anthropic_max_tokens_cuts_the_answer_to_length(claude):
    answer = claude.complete(chat("x [[fake tokens=5]]", max_tokens=2))
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 2
    chunks = collect(claude, chat("x [[fake tokens=5]]", stream=True, max_tokens=2))
    assert text_of(chunks) == "tok0 tok1"
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize("wire_kind", ["anthropic", "gemini"])
def test_tool_calls_round_trip_over_the_wire(wire_kind, fake):
    provider = make_provider(wire_kind, fake.url)
    try:
        ask = [{"role": "user", "content": "weather? [[fake tool=get_weather]]"}]
        answer = provider.complete(chat("", messages=ask, tools=[WEATHER]))
        choice = answer["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        (tool_call,) = choice["message"]["tool_calls"]
        assert tool_call["function"]["name"] == "get_weather"
        assert json.loads(tool_call["function"]["arguments"]) == {"city": "Paris"}

        chunks = collect(provider, chat("", stream=True, messages=ask, tools=[WEATHER]))
        calls = tool_calls_of(chunks)
        assert list(calls) == [0]
        assert calls[0]["name"] == "get_weather"
        assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}
        assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
        assert chunks[-1]["usage"]["completion_tokens"] == 5

        # the result goes back in the vendor's form, which the fake checks against the call
        follow_up = ask + [
            {"role": "assistant", "content": None, "tool_calls": [{**tool_call}]},
            {"role": "tool", "tool_call_id": tool_call["id"], "content": '{"sky": "clear"}'},
        ]
        answer = provider.complete(chat("", messages=follow_up, tools=[WEATHER]))
        assert answer["choices"][0]["message"]["content"] == "tok0 tok1 tok2 tok3 tok4"
    finally:
        provider.close()


def test_anthropic_fake_checks_what_the_vendor_checks(fake):
    url = f"{fake.url}/v1/messages"
    good = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    assert fake.http.post(url, json=good, headers=headers, timeout=5).status_code == 200
    no_cap = {k: v for k, v in good.items() if k != "max_tokens"}
    resp = fake.http.post(url, json=no_cap, headers=headers, timeout=5)
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert fake.http.post(url, json=good, headers={"x-api-key": "k"}, timeout=5).status_code == 400
    assert fake.http.post(url, json=good, timeout=5).status_code == 401


# -- gemini -------------------------------------------------------------------------------


@pytest.fixture
def gem(fake):
    p = make_provider("gemini", fake.url)
    yield p
    p.close()


def test_gemini_key_never_appears_in_the_url(gem, fake):
    calls = [chat("hi"), chat("hi", stream=True)]
    gem.complete(calls[0])
    collect(gem, calls[1])
    gem.embed(EmbeddingCall({"input": "hi"}, MODEL, "emb", "wire-emb-key"))
    for request_id, method in (
        (calls[0].request_id, "generateContent"),
        (calls[1].request_id, "streamGenerateContent"),
        ("wire-emb-key", "batchEmbedContents"),
    ):
        (seen,) = fake.requests(request_id)
        assert seen["path"].endswith(f":{method}")
        assert seen["headers"]["x-goog-api-key"] == SECRET
        assert "key" not in seen["query"]
        assert SECRET not in seen["path"] and SECRET not in json.dumps(seen["query"])
    (streamed,) = fake.requests(calls[1].request_id)
    assert streamed["query"] == {"alt": ["sse"]}


def test_gemini_request_shape(gem, fake):
    call = chat(
        "hi",
        max_tokens=9,
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        temperature=0.5,
        response_format={"type": "json_object"},
    )
    gem.complete(call)
    (seen,) = fake.requests(call.request_id)
    assert seen["path"] == "/v1beta/models/up-model:generateContent"
    body = seen["body"]
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert body["generationConfig"] == {
        "temperature": 0.5,
        "maxOutputTokens": 9,
        "responseMimeType": "application/json",
    }


def test_gemini_max_tokens_and_candidates(gem):
    answer = gem.complete(chat("x [[fake tokens=5]]", max_tokens=3, n=2))
    assert [c["finish_reason"] for c in answer["choices"]] == ["length", "length"]
    assert answer["usage"]["completion_tokens"] == 6
    chunks = collect(gem, chat("x [[fake tokens=4]]", stream=True, n=2))
    for index in (0, 1):
        mine = [c for c in chunks if c["choices"] and c["choices"][0]["index"] == index]
        assert text_of(mine) == "tok0 tok1 tok2 tok3"
    assert chunks[-1]["usage"]["completion_tokens"] == 8


def test_gemini_stream_without_usage_still_ends_cleanly(gem):
    chunks = collect(gem, chat("x [[fake nousage tokens=2]]", stream=True))
    assert text_of(chunks) == "tok0 tok1"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_gemini_embeddings(gem, fake):
    call = EmbeddingCall(
        {"input": ["one two", "three"], "dimensions": 4}, MODEL, "emb", "wire-emb-gem"
    )
    out = gem.embed(call)
    assert [len(d["embedding"]) for d in out["data"]] == [4, 4]
    assert out["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    (seen,) = fake.requests("wire-emb-gem")
    assert seen["body"]["requests"][0]["model"] == "models/emb"


def test_gemini_fake_refuses_a_key_in_the_url(fake):
    url = f"{fake.url}/v1beta/models/m:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    resp = fake.http.post(
        url, params={"key": "k"}, json=body, headers={"x-goog-api-key": "k"}, timeout=5
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert fake.http.post(url, json=body, timeout=5).status_code == 403
    ok = fake.http.post(url, json=body, headers={"x-goog-api-key": "k"}, timeout=5)
    assert ok.status_code == 200
