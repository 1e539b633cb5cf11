"""An upstream that needs no network: it writes its own text and streams it at a set pace.

Token counts are true for its own text: every piece it emits is one token. The pace
(`ttft_s`, `tokens_per_s` in the provider config) makes latency metrics and streaming look
like a real model's, which is what the demo and the README's curl examples need.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator

from ..config import ProviderConfig
from ..estimates import estimate_messages
from .base import ChatCall, ChunkStream, EmbeddingCall, Provider

_WORDS = (
    "Facade is answering from its built-in simulator, so no model was called and no money "
    "was spent. Point FACADE_CONFIG at a file with a real provider to talk to a model. "
    "Meanwhile this text streams at a steady pace so that time to first token, inter-token "
    "latency and tokens per second have something honest to measure."
).split(" ")
DEFAULT_ANSWER_TOKENS = 48


def _last_user_text(messages: list[dict]) -> str:
    for message in reversed(messages):
        if message["role"] == "user" and isinstance(message.get("content"), str):
            return message["content"]
    return ""


def answer_tokens(call: ChatCall) -> list[str]:
    """The pieces of the answer; the echo of the prompt keeps answers distinguishable."""
    prompt = _last_user_text(call.body["messages"])[:60].replace("\n", " ")
    head = [f"You said: {prompt!r}. "] if prompt else []
    limit = call.max_tokens or DEFAULT_ANSWER_TOKENS
    words = (w + " " for w in itertools.cycle(_WORDS))
    pieces = head + list(itertools.islice(words, max(0, DEFAULT_ANSWER_TOKENS - len(head))))
    return pieces[:limit]


class SimulatorStream(ChunkStream):
    def __init__(self, chunks: Iterator[dict]):
        self._chunks = chunks

    def __iter__(self) -> Iterator[dict]:
        return self._chunks

    def close(self) -> None:
        try:
            self._chunks.close()
        except ValueError:
            pass  # closed from the hang-up watch while it sleeps: it stops at its next yield


class SimulatorProvider(Provider):
    kind = "simulator"

    def __init__(self, config: ProviderConfig):
        super().__init__(config)
        self.ttft_s = config.ttft_s
        self.token_s = 1.0 / config.tokens_per_s

    def _usage(self, call: ChatCall, output: int) -> dict:
        prompt = estimate_messages(call.body["messages"])
        return {
            "prompt_tokens": prompt,
            "completion_tokens": output,
            "total_tokens": prompt + output,
        }

    def complete(self, call: ChatCall) -> dict:
        pieces = answer_tokens(call)
        time.sleep(self.ttft_s + self.token_s * max(0, len(pieces) - 1))
        finish = (
            "length" if call.max_tokens is not None and len(pieces) >= call.max_tokens else "stop"
        )
        return {
            "id": f"chatcmpl-sim-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.upstream_model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(pieces).rstrip()},
                    "finish_reason": finish,
                }
            ],
            "usage": self._usage(call, len(pieces)),
        }

    def stream(self, call: ChatCall) -> ChunkStream:
        return SimulatorStream(self._chunks(call))

    def _chunks(self, call: ChatCall) -> Iterator[dict]:
        pieces = answer_tokens(call)
        base = {
            "id": f"chatcmpl-sim-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": call.upstream_model,
        }
        time.sleep(self.ttft_s)
        yield {
            **base,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ],
        }
        for i, piece in enumerate(pieces):
            if i:
                time.sleep(self.token_s)
            yield {
                **base,
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
        finish = (
            "length" if call.max_tokens is not None and len(pieces) >= call.max_tokens else "stop"
        )
        yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
        yield {**base, "choices": [], "usage": self._usage(call, len(pieces))}

    def embed(self, call: EmbeddingCall) -> dict:
        inputs = call.body["input"]
        inputs = [inputs] if isinstance(inputs, str) else inputs
        data = []
        for i, text in enumerate(inputs):
            seed = uuid.uuid5(uuid.NAMESPACE_OID, str(text)).bytes
            vector = [round(b / 255 - 0.5, 4) for b in seed] * 2
            data.append({"object": "embedding", "index": i, "embedding": vector})
        tokens = sum(max(1, len(str(t)) // 4) for t in inputs)
        return {
            "object": "list",
            "data": data,
            "model": call.upstream_model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
