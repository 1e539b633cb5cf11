"""OpenAI protocol (OpenAI, vLLM, Ollama, LM Studio, ...): pure translation functions.

The body is already OpenAI-shaped, so translation is mostly the model name, the output cap
and always asking for usage in streams, so metering is exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .. import jsonutil
from ..config import ProviderConfig
from ..errors import UpstreamError
from .base import ChatCall, EmbeddingCall
from .common import event_json
from .sse import SSEEvent

KIND = "openai"
# Fields we set ourselves rather than pass through.
_OWN_FIELDS = frozenset(
    {"model", "stream", "stream_options", "max_tokens", "max_completion_tokens"}
)


def auth_headers(config: ProviderConfig) -> dict[str, str]:
    return {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}


def chat_url(config: ProviderConfig, upstream_model: str, stream: bool) -> str:
    return f"{config.base_url.rstrip('/')}/chat/completions"


def embedding_url(config: ProviderConfig, upstream_model: str) -> str:
    return f"{config.base_url.rstrip('/')}/embeddings"


def build_payload(call: ChatCall) -> dict:
    """The body for the upstream: the caller's fields, our model id, the cap by its name.

    The cap always goes out, so the upstream cannot bill more output than was reserved: under
    the name the caller used (`max_completion_tokens` is what newer OpenAI models require,
    `max_tokens` is what older compatible servers understand), or as `max_completion_tokens`
    when it is the model's configured `max_output_tokens`.
    """
    body = call.body
    payload = {k: v for k, v in body.items() if k not in _OWN_FIELDS and v is not None}
    payload["model"] = call.upstream_model
    if call.max_tokens is not None:
        legacy = body.get("max_tokens") is not None and body.get("max_completion_tokens") is None
        payload["max_tokens" if legacy else "max_completion_tokens"] = call.max_tokens
    if call.stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    return payload


def parse_response(data: dict, call: ChatCall) -> dict:
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise UpstreamError("the upstream answer has no choices")
    data.setdefault("object", "chat.completion")
    return data


def translate_stream(events: Iterable[SSEEvent], call: ChatCall) -> Iterator[dict]:
    """OpenAI chunks pass as they are; a stream that ends without [DONE] was cut off."""
    for event in events:
        data = event.data
        if data == b"[DONE]":
            return
        chunk = event_json(event)
        if "error" in chunk and "choices" not in chunk:
            raise UpstreamError(_message_of(chunk) or "the upstream reported an error mid-stream")
        yield chunk
    raise UpstreamError("the upstream stream ended before it was complete")


def error_message(status: int, body: bytes) -> str | None:
    try:
        data = jsonutil.loads(body)
    except jsonutil.JSONDecodeError:
        return None
    return _message_of(data) if isinstance(data, dict) else None


def _message_of(data: dict) -> str | None:
    error = data.get("error", data)
    if isinstance(error, str):
        return error[:1000]
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"][:1000]
    return None


def build_embedding_payload(call: EmbeddingCall) -> dict:
    payload = {k: v for k, v in call.body.items() if v is not None}
    payload["model"] = call.upstream_model
    return payload


def parse_embedding_response(data: dict, call: EmbeddingCall) -> dict:
    if not isinstance(data.get("data"), list):
        raise UpstreamError("the upstream embeddings answer has no data")
    return data
