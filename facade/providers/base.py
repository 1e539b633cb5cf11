"""The provider interface: every upstream kind answers a `ChatCall` in OpenAI's shape."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

from ..config import ModelConfig, ProviderConfig
from ..errors import UnsupportedParameterError


@dataclass(slots=True)
class ChatCall:
    """One attempt at one target: the validated body and what the router decided."""

    body: dict
    model: ModelConfig
    upstream_model: str
    # The output cap: the caller's (max_completion_tokens wins), else the model's
    # max_output_tokens (what admission reserved); None when counting tokens only.
    max_tokens: int | None
    request_id: str
    stream: bool
    trace_headers: dict[str, str] | None = None  # W3C trace context for the upstream call
    # The client's own body when it speaks a vendor protocol (an Anthropic Messages request):
    # a provider of that vendor sends it natively and attaches the vendor's own answer
    # (`native` on the answer and on each chunk), so nothing is lost in a round trip. Every
    # other provider uses `body`, the same request in the internal chat shape.
    native: dict | None = None


@dataclass(slots=True)
class EmbeddingCall:
    body: dict
    model: ModelConfig
    upstream_model: str
    request_id: str
    trace_headers: dict[str, str] | None = None


class ChunkStream(ABC):
    """An opened upstream stream: iterate for chat.completion.chunk dicts, always close."""

    @abstractmethod
    def __iter__(self) -> Iterator[dict]: ...

    @abstractmethod
    def close(self) -> None: ...


class Provider(ABC):
    """A configured upstream. `complete` and `stream` raise FacadeError subclasses only."""

    kind: str = ""

    def __init__(self, config: ProviderConfig):
        self.config = config
        self.name = config.name

    @abstractmethod
    def complete(self, call: ChatCall) -> dict:
        """A chat.completion dict, `usage` included when the upstream gave it."""

    @abstractmethod
    def stream(self, call: ChatCall) -> ChunkStream:
        """Open the stream before returning, so a failure here is an ordinary error."""

    def count_tokens(self, call: ChatCall) -> int | None:
        """The upstream's own count of `call.native`'s input tokens, or None when it has none."""
        return None

    def embed(self, call: EmbeddingCall) -> dict:
        raise UnsupportedParameterError("input", self.kind, "this provider has no embeddings")

    def close(self) -> None:  # noqa: B027 - optional hook, most kinds hold nothing
        """Release connections when the worker stops."""
