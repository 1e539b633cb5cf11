"""A provider that speaks one vendor protocol over HTTP; the protocol module is pure."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

from .. import jsonutil
from ..config import ProviderConfig
from ..errors import UpstreamError
from .base import ChatCall, ChunkStream, EmbeddingCall, Provider
from .sse import decode_events
from .upstream import Upstream, iter_body, read_json_body


class HTTPChunkStream(ChunkStream):
    __slots__ = ("_chunks", "_resp")

    def __init__(self, resp, chunks: Iterator[dict]):
        self._resp = resp
        self._chunks = chunks

    def __iter__(self) -> Iterator[dict]:
        return self._chunks

    def close(self) -> None:
        self._resp.close()


class HTTPProvider(Provider):
    """Glue between a protocol module (pure translation) and the shared HTTP policy.

    A protocol module provides: `auth_headers(config)`, `chat_url(config, model, stream)`,
    `build_payload(call)`, `parse_response(data, call)`, `translate_stream(events, call)`,
    `error_message(status, body)`, and optionally the embeddings trio.
    """

    def __init__(self, config: ProviderConfig, protocol: ModuleType, pool_size: int):
        super().__init__(config)
        self.kind = config.kind
        self.protocol = protocol
        self.upstream = Upstream(config, protocol.auth_headers(config), pool_size)
        self._extras = tuple(config.passthrough_params)

    def _payload(self, call: ChatCall) -> dict:
        """The protocol's payload plus the vendor extras this provider lists, as sent."""
        payload = self.protocol.build_payload(call)
        for name in self._extras:
            if name in call.body:
                payload[name] = call.body[name]
        return payload

    def _post(self, url: str, payload: dict, call: ChatCall | EmbeddingCall):
        return self.upstream.post(
            url,
            jsonutil.dumps(payload),
            request_id=call.request_id,
            parse_error=self.protocol.error_message,
            extra_headers=call.trace_headers,
        )

    def _read_json(self, resp) -> dict:
        raw = read_json_body(resp, self.name)
        try:
            data = jsonutil.loads(raw)
        except jsonutil.JSONDecodeError:
            raise UpstreamError(f"upstream {self.name} answered with invalid JSON") from None
        if not isinstance(data, dict):
            raise UpstreamError(f"upstream {self.name} answered with an unexpected shape")
        return data

    def complete(self, call: ChatCall) -> dict:
        proto = self.protocol
        payload = self._payload(call)
        resp = self._post(proto.chat_url(self.config, call.upstream_model, False), payload, call)
        return proto.parse_response(self._read_json(resp), call)

    def stream(self, call: ChatCall) -> ChunkStream:
        proto = self.protocol
        payload = self._payload(call)
        url = proto.chat_url(self.config, call.upstream_model, True)
        resp = self._post(url, payload, call)
        events = decode_events(iter_body(resp, self.name))
        return HTTPChunkStream(resp, proto.translate_stream(events, call))

    def count_tokens(self, call: ChatCall) -> int | None:
        proto = self.protocol
        if call.native is None or not hasattr(proto, "count_tokens_url"):
            return None
        payload = proto.count_tokens_payload(call)
        resp = self._post(proto.count_tokens_url(self.config), payload, call)
        return proto.parse_count(self._read_json(resp))

    def embed(self, call: EmbeddingCall) -> dict:
        proto = self.protocol
        if not hasattr(proto, "build_embedding_payload"):
            return super().embed(call)
        payload = proto.build_embedding_payload(call)
        url = proto.embedding_url(self.config, call.upstream_model)
        resp = self._post(url, payload, call)
        return proto.parse_embedding_response(self._read_json(resp), call)

    def close(self) -> None:
        self.upstream.close()
