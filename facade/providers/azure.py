"""Azure OpenAI: the OpenAI protocol behind Azure's deployment URLs and `api-key` header.

The body and the answers are OpenAI's, so the OpenAI module does the translation; only the
address and the credentials differ. The deployment named in the URL picks the model, so
the body carries no `model`. Azure's content filter adds a first stream chunk with no
choices and no usage (only `prompt_filter_results`): it is dropped, since OpenAI clients
read a chunk without choices as the usage chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from urllib.parse import quote

from ..config import ProviderConfig
from . import openai
from .base import ChatCall, EmbeddingCall
from .sse import SSEEvent

KIND = "azure"

parse_response = openai.parse_response
error_message = openai.error_message
parse_embedding_response = openai.parse_embedding_response


def auth_headers(config: ProviderConfig) -> dict[str, str]:
    return {"api-key": config.api_key} if config.api_key else {}


def _deployment_url(config: ProviderConfig, deployment: str, operation: str) -> str:
    base = config.base_url.rstrip("/")
    if base.endswith("/openai"):  # tolerate the resource URL given with Azure's prefix
        base = base[: -len("/openai")]
    version = quote(config.api_version or "", safe="-.")
    return (
        f"{base}/openai/deployments/{quote(deployment, safe='')}/{operation}?api-version={version}"
    )


def chat_url(config: ProviderConfig, upstream_model: str, stream: bool) -> str:
    return _deployment_url(config, upstream_model, "chat/completions")


def embedding_url(config: ProviderConfig, upstream_model: str) -> str:
    return _deployment_url(config, upstream_model, "embeddings")


def build_payload(call: ChatCall) -> dict:
    payload = openai.build_payload(call)
    del payload["model"]
    return payload


def translate_stream(events: Iterable[SSEEvent], call: ChatCall) -> Iterator[dict]:
    for chunk in openai.translate_stream(events, call):
        if chunk.get("choices") or chunk.get("usage") is not None:
            yield chunk


def build_embedding_payload(call: EmbeddingCall) -> dict:
    payload = openai.build_embedding_payload(call)
    del payload["model"]
    return payload
