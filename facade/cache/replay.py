"""Between a stream and a whole answer: assemble a streamed answer, replay a cached one.

Pure functions (dicts in, dicts out) plus the two chunk streams the pipeline wraps around
them: a cached answer is stored as one chat.completion whether it arrived streamed or not,
and a stream asking for it gets it back as chunks.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..providers import ChunkStream


def _merge_call(into: dict, part: dict) -> None:
    """Merge one tool-call (or legacy function_call) delta into the call being built."""
    for name, value in part.items():
        if name == "function" and isinstance(value, dict):
            _merge_call(into.setdefault("function", {}), value)
        elif name in ("name", "arguments") and isinstance(value, str):
            into[name] = into.get(name, "") + value
        elif name != "index" and value is not None:
            into[name] = value


def _merge_delta(acc: dict, delta: dict) -> bool:
    """Fold one delta into a choice's message; False when the delta holds something unknown.

    String fields (content, refusal, a vendor's reasoning text) concatenate; of the others only
    tool calls are understood. An answer that cannot be replayed faithfully is not cached.
    """
    message = acc["message"]
    for name, value in delta.items():
        if value is None:
            continue
        if name == "role":
            message["role"] = value
        elif isinstance(value, str):
            message[name] = (message.get(name) or "") + value
        elif name == "tool_calls" and isinstance(value, list):
            calls = acc["tools"]
            for part in value:
                if not isinstance(part, dict):
                    return False
                _merge_call(calls.setdefault(part.get("index", 0), {}), part)
        elif name == "function_call" and isinstance(value, dict):
            _merge_call(message.setdefault("function_call", {}), value)
        else:
            return False
    return True


def assemble(chunks: list[dict]) -> dict | None:
    """The chat.completion a stream's chunks add up to, or None unless every choice finished.

    `usage` and `model` are left to the caller (it knows the measured tokens and the model
    name the client asked for).
    """
    choices: dict[int, dict] = {}
    fingerprint = None
    for chunk in chunks:
        fingerprint = chunk.get("system_fingerprint") or fingerprint
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            acc = choices.get(index)
            if acc is None:
                acc = choices[index] = {
                    "message": {"role": "assistant", "content": None},
                    "tools": {},
                    "logprobs": None,
                    "finish_reason": None,
                }
            delta = choice.get("delta")
            if isinstance(delta, dict) and not _merge_delta(acc, delta):
                return None
            logprobs = choice.get("logprobs")
            if isinstance(logprobs, dict):
                merged = acc["logprobs"] = acc["logprobs"] or {}
                for name, items in logprobs.items():
                    if isinstance(items, list):
                        merged.setdefault(name, []).extend(items)
            if choice.get("finish_reason"):
                acc["finish_reason"] = choice["finish_reason"]
    if not choices or any(acc["finish_reason"] is None for acc in choices.values()):
        return None
    first = chunks[0]
    answer = {
        "id": first.get("id"),
        "object": "chat.completion",
        "created": first.get("created"),
        "choices": [_choice(index, choices[index]) for index in sorted(choices)],
    }
    if fingerprint:
        answer["system_fingerprint"] = fingerprint
    return answer


def _choice(index: int, acc: dict) -> dict:
    message = acc["message"]
    if acc["tools"]:
        message["tool_calls"] = [acc["tools"][i] for i in sorted(acc["tools"])]
    return {
        "index": index,
        "message": message,
        "logprobs": acc["logprobs"],
        "finish_reason": acc["finish_reason"],
    }


def replay(answer: dict) -> list[dict]:
    """A chat.completion as chunks: per choice, its whole message in one delta, then its
    finish_reason. No usage chunk: the relay adds one from the metrics when asked."""
    base = {
        "id": answer.get("id"),
        "object": "chat.completion.chunk",
        "created": answer.get("created"),
        "model": answer.get("model"),
    }
    if answer.get("system_fingerprint"):
        base["system_fingerprint"] = answer["system_fingerprint"]
    chunks = []
    for choice in answer.get("choices") or ():
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        delta = {"role": message.get("role") or "assistant"}
        for name, value in message.items():
            if name == "tool_calls" and value:
                delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(value)]
            elif name != "role" and value is not None:
                delta[name] = value
        opening = {"index": index, "delta": delta, "finish_reason": None}
        if choice.get("logprobs") is not None:
            opening["logprobs"] = choice["logprobs"]
        chunks.append({**base, "choices": [opening]})
        ending = {"index": index, "delta": {}, "finish_reason": choice.get("finish_reason")}
        chunks.append({**base, "choices": [ending]})
    return chunks


class ReplayStream(ChunkStream):
    """Chunks already in hand, as an opened stream."""

    def __init__(self, chunks: list[dict]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[dict]:
        return iter(self._chunks)

    def close(self) -> None:
        self._chunks = []


MAX_RECORDED = 20_000  # chunks; a longer stream is relayed but not stored


class RecordingStream(ChunkStream):
    """An upstream stream that keeps every chunk it passes on, to store the answer later.

    Past `limit` chunks it lets go of them (the sink is emptied: nothing is stored), so
    a very long stream does not hold its whole history in memory.
    """

    def __init__(self, stream: ChunkStream, sink: list[dict], limit: int = MAX_RECORDED) -> None:
        self._stream = stream
        self._sink = sink
        self._limit = limit

    def __iter__(self) -> Iterator[dict]:
        sink, limit = self._sink, self._limit
        recording = True
        for chunk in self._stream:
            if recording:
                sink.append(chunk)
                if len(sink) > limit:
                    sink.clear()
                    recording = False
            yield chunk

    def close(self) -> None:
        self._stream.close()
