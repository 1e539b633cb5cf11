"""The Azure OpenAI protocol module: OpenAI's body behind deployment URLs and `api-key`."""

from __future__ import annotations

import json

import pytest

from facade.config import ProviderConfig
from facade.errors import UpstreamError
from facade.providers import azure
from facade.providers.base import ChatCall, EmbeddingCall
from facade.providers.sse import SSEEvent
from tests.builders import model_config, provider_config

MODEL = model_config("gpt", context_window=128000, max_output_tokens=4096)
BASE = "https://acme.openai.azure.com"


def config(base_url: str = BASE, api_key: str | None = "az-key") -> ProviderConfig:
    return provider_config(
        "az", "azure", base_url=base_url, api_key=api_key, api_version="2024-10-21"
    )


def call(stream: bool = False, max_tokens: int | None = None, **body) -> ChatCall:
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return ChatCall(body, MODEL, "gpt4o-prod", max_tokens, "req-1", stream)


@pytest.mark.parametrize("base", [BASE, BASE + "/", BASE + "/openai", BASE + "/openai/"])
def test_deployment_urls(base):
    cfg = config(base)
    expected = f"{BASE}/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
    assert azure.chat_url(cfg, "gpt4o-prod", False) == expected
    assert azure.chat_url(cfg, "gpt4o-prod", True) == expected
    assert azure.embedding_url(cfg, "emb") == (
        f"{BASE}/openai/deployments/emb/embeddings?api-version=2024-10-21"
    )


def test_a_deployment_name_cannot_escape_its_path_segment():
    url = azure.chat_url(config(), "a/b?x=1", False)
    assert url.startswith(f"{BASE}/openai/deployments/a%2Fb%3Fx%3D1/chat/completions?")


def test_api_key_header_and_no_bearer():
    assert azure.auth_headers(config()) == {"api-key": "az-key"}
    assert azure.auth_headers(config(api_key=None)) == {}


def test_payload_is_openais_without_model():
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.2,
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
        "seed": 3,
        "logit_bias": {"1": 2},
        "user": "u",
        "max_completion_tokens": 20,
    }
    out = azure.build_payload(call(max_tokens=20, **body))
    assert "model" not in out
    assert out["max_completion_tokens"] == 20
    for name in ("messages", "temperature", "tools", "tool_choice", "response_format", "seed"):
        assert out[name] == body[name]
    streamed = azure.build_payload(call(stream=True))
    assert streamed["stream"] is True
    assert streamed["stream_options"] == {"include_usage": True}


def test_response_passes_through():
    data = {
        "id": "chatcmpl-1",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        "prompt_filter_results": [],
    }
    out = azure.parse_response(data, call())
    assert out["object"] == "chat.completion"
    assert out["choices"][0]["message"]["content"] == "x"
    with pytest.raises(UpstreamError):
        azure.parse_response({"error": "x"}, call())


def events(*objs) -> list[SSEEvent]:
    return [SSEEvent(None, o if isinstance(o, bytes) else json.dumps(o).encode()) for o in objs]


def test_stream_drops_the_content_filter_preamble_and_keeps_usage():
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    preamble = {
        "id": "",
        "object": "",
        "created": 0,
        "model": "",
        "choices": [],
        "prompt_filter_results": [],
    }
    text = {**base, "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}
    usage = {
        **base,
        "choices": [],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    chunks = list(
        azure.translate_stream(events(preamble, text, usage, b"[DONE]"), call(stream=True))
    )
    assert chunks == [text, usage]


def test_stream_errors_and_cut_offs():
    with pytest.raises(UpstreamError, match="ended before"):
        list(azure.translate_stream(events({"choices": []}), call()))
    error = {"error": {"message": "The server had an error", "code": "server_error"}}
    with pytest.raises(UpstreamError, match="server had an error"):
        list(azure.translate_stream(events(error), call()))


def test_error_message():
    body = {"error": {"code": "content_filter", "message": "The response was filtered"}}
    assert azure.error_message(400, json.dumps(body).encode()) == "The response was filtered"
    assert azure.error_message(500, b"nope") is None


def test_embeddings_without_model():
    emb = EmbeddingCall({"input": ["a"], "dimensions": 256}, MODEL, "emb-prod", "req-2")
    assert azure.build_embedding_payload(emb) == {"input": ["a"], "dimensions": 256}
    data = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1]}]}
    assert azure.parse_embedding_response(data, emb) == data
