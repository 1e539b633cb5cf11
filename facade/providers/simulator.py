"""An upstream that needs no network: it writes its own text and streams it at a set pace.

Token counts are true for its own text: every piece it emits is one token. The pace
(`ttft_s`, `tokens_per_s` in the provider config) makes latency metrics and streaming look
like a real model's, which is what the demo and the README's curl examples need.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from ..config import ProviderConfig
from ..estimates import estimate_messages
from .base import ChatCall, ChunkStream, EmbeddingCall, Provider

SENTENCES = (
    "Facade is answering from its built-in simulator, so no model was called and no money "
    "was spent.",
    "Point FACADE_CONFIG at a file with a real provider to talk to a model.",
    "Meanwhile this text streams at a steady pace so that time to first token, inter-token "
    "latency and tokens per second have something honest to measure.",
)
NATURAL_MIN_TOKENS = 24  # an answer left alone ends at the first sentence end past this
MAX_COUNT = 500
_COUNT = re.compile(r"\bcount(?: from 1)? to (\d{1,6})\b", re.IGNORECASE)


@dataclass(slots=True)
class Choice:
    pieces: list[str]  # one token each
    finish_reason: str


def _last_user_text(messages: list[dict]) -> str:
    for message in reversed(messages):
        if message["role"] == "user" and isinstance(message.get("content"), str):
            return message["content"]
    return ""


def natural_answer(prompt: str, index: int = 0) -> list[str]:
    """What the simulator says when nothing stops it, one token a piece, ending at a sentence
    end. "count to N" is answered by counting; anything else gets an echo of the prompt and
    whole sentences (each choice of `n` starts at another one)."""
    wanted = _COUNT.search(prompt)
    if wanted:
        top = min(int(wanted.group(1)), MAX_COUNT)
        return [f"{i}, " for i in range(1, top)] + [f"{top}." if top else "0."]
    echo = prompt[:60].replace("\n", " ")
    pieces = [f"You said: {echo!r}. "] if echo else []
    k = index
    while len(pieces) < NATURAL_MIN_TOKENS:
        pieces += [word + " " for word in SENTENCES[k % len(SENTENCES)].split(" ")]
        k += 1
    pieces[-1] = pieces[-1].rstrip()
    return pieces


def _stops(body: dict) -> list[str]:
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    return [s for s in stop or () if s]


def cut_at_stop(pieces: list[str], stops: list[str]) -> list[str] | None:
    """The pieces before the first stop sequence (not included), or None if none occurs."""
    text = "".join(pieces)
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    if not found:
        return None
    end, kept, at = min(found), [], 0
    for piece in pieces:
        if at >= end:
            break
        kept.append(piece[: end - at])
        at += len(piece)
    return [p for p in kept if p]


def fit_to_cap(pieces: list[str], cap: int) -> tuple[list[str], str]:
    """Shorten an answer to the output cap: at the last sentence end that leaves at least
    half the cap used, like a model that plans a short answer; else cut mid-sentence with
    finish_reason "length", as a real model is cut."""
    if len(pieces) <= cap:
        return pieces, "stop"
    ends = [
        i + 1
        for i, piece in enumerate(pieces[:cap])
        if i >= 1 and piece.rstrip().endswith((".", "!", "?"))
    ]
    if ends and ends[-1] * 2 >= cap:
        kept = pieces[: ends[-1]]
        return kept[:-1] + [kept[-1].rstrip()], "stop"
    return pieces[:cap], "length"


def answer(call: ChatCall, index: int = 0) -> Choice:
    """One choice: the natural answer, fitted to the output cap, then cut at a stop sequence."""
    pieces = natural_answer(_last_user_text(call.body["messages"]), index)
    finish = "stop"
    if call.max_tokens is not None:
        pieces, finish = fit_to_cap(pieces, call.max_tokens)
    stopped = cut_at_stop(pieces, _stops(call.body))
    if stopped is not None:
        pieces, finish = stopped, "stop"
    return Choice(pieces, finish)


def answers(call: ChatCall) -> list[Choice]:
    n = call.body.get("n") or 1
    return [answer(call, i) for i in range(n)]


def answer_tokens(call: ChatCall) -> list[str]:
    """The first choice's pieces (one token each)."""
    return answer(call).pieces


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
        choices = answers(call)
        longest = max(len(c.pieces) for c in choices)
        time.sleep(self.ttft_s + self.token_s * max(0, longest - 1))
        return {
            "id": f"chatcmpl-sim-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.upstream_model,
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": "".join(c.pieces)},
                    "finish_reason": c.finish_reason,
                }
                for i, c in enumerate(choices)
            ],
            "usage": self._usage(call, sum(len(c.pieces) for c in choices)),
        }

    def stream(self, call: ChatCall) -> ChunkStream:
        return SimulatorStream(self._chunks(call))

    def _chunks(self, call: ChatCall) -> Iterator[dict]:
        choices = answers(call)
        base = {
            "id": f"chatcmpl-sim-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": call.upstream_model,
        }
        time.sleep(self.ttft_s)
        for i in range(len(choices)):
            role = {"role": "assistant", "content": ""}
            yield {**base, "choices": [{"index": i, "delta": role, "finish_reason": None}]}
        for step in range(max(len(c.pieces) for c in choices)):
            if step:
                time.sleep(self.token_s)
            for i, choice in enumerate(choices):
                if step < len(choice.pieces):
                    delta = {"content": choice.pieces[step]}
                    yield {
                        **base,
                        "choices": [{"index": i, "delta": delta, "finish_reason": None}],
                    }
        for i, choice in enumerate(choices):
            end = {"index": i, "delta": {}, "finish_reason": choice.finish_reason}
            yield {**base, "choices": [end]}
        output = sum(len(c.pieces) for c in choices)
        yield {**base, "choices": [], "usage": self._usage(call, output)}

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
