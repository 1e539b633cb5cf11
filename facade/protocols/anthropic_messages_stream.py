"""Chat completion chunks -> Anthropic's typed stream events, pure (dicts in, events out).

`MessageEvents` is fed the relay's chunks in order and answers the events each one makes:
`message_start` (and a `ping`) before anything else, then per content block
`content_block_start`, its deltas (`text_delta`, `input_json_delta`, `thinking_delta`) and
`content_block_stop`; the relay's last chunk (usage and metrics) and `closing()` give
`message_delta` with the stop reason and usage, then `message_stop`.

A chunk from an Anthropic-kind target carries the upstream's own event (`native`): that event
is passed as it came (only `message_start` gets the caller's model name), so nothing is lost
in a round trip, and `closing()` adds nothing: the upstream's `message_stop` arrives on the
relay's last chunk.
"""

from __future__ import annotations

from .. import jsonutil
from .anthropic_messages_answer import message_id, stop_reason, usage

Event = tuple[str, dict]


def encode(events: list[Event]) -> bytes:
    """Server-sent events the way Anthropic writes them: `event:` line, `data:` line."""
    return b"".join(
        b"event: " + name.encode() + b"\ndata: " + jsonutil.dumps(data) + b"\n\n"
        for name, data in events
    )


class MessageEvents:
    """The state of one stream: which block is open, what each tool call's block is."""

    def __init__(self, request_id: str, input_estimate: int, stop_sequences: list | None):
        self.request_id = request_id
        self.input_estimate = input_estimate
        self.stop_sequences = stop_sequences
        self.started = False
        self.native = False
        self.index = -1  # the current (last opened) block
        self.open: str | None = None  # its type while open
        self.tools: dict[int, int] = {}  # OpenAI tool call index -> block index
        self.stop: tuple[str, str | None] = ("end_turn", None)
        self.usage: dict | None = None

    def from_chunk(self, chunk: dict) -> list[Event]:
        native = chunk.get("native")
        if isinstance(native, dict):
            return self._native(native, chunk)
        events: list[Event] = []
        if not self.started:
            events.extend(self._start(chunk))
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) == 0:
                self._choice(choice, events)
        if chunk.get("metrics"):
            self.usage = usage(chunk["metrics"], chunk.get("usage"))
        return events

    def closing(self) -> list[Event]:
        if self.native:
            return []
        events: list[Event] = [] if self.started else self._start({})
        self._close(events)
        reason, sequence = self.stop
        final_usage = self.usage or {"output_tokens": 0}
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": sequence},
                    "usage": final_usage,
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    def _native(self, event: dict, chunk: dict) -> list[Event]:
        self.native = self.started = True
        kind = event.get("type")
        if not isinstance(kind, str):
            return []
        if kind == "message_start" and isinstance(event.get("message"), dict):
            event = {**event, "message": {**event["message"], "model": chunk.get("model")}}
        return [(kind, event)]

    def _start(self, chunk: dict) -> list[Event]:
        self.started = True
        message = {
            "id": message_id(chunk.get("id"), self.request_id),
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model"),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_estimate, "output_tokens": 0},
        }
        return [("message_start", {"type": "message_start", "message": message}), _PING]

    def _choice(self, choice: dict, events: list[Event]) -> None:
        delta = choice.get("delta") or {}
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""}, events)
            events.append(self._delta({"type": "thinking_delta", "thinking": reasoning}))
        text = delta.get("content")
        if isinstance(text, str) and text:
            self._open("text", {"type": "text", "text": ""}, events)
            events.append(self._delta({"type": "text_delta", "text": text}))
        for call in delta.get("tool_calls") or ():
            self._tool_call(call, events)
        finish = choice.get("finish_reason")
        if finish:
            self.stop = stop_reason(finish, choice.get("stop_reason"), self.stop_sequences)

    def _tool_call(self, call: dict, events: list[Event]) -> None:
        position = call.get("index", 0)
        function = call.get("function") or {}
        if call.get("id") or position not in self.tools:
            block = {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{self.request_id}_{position}",
                "name": function.get("name") or "",
                "input": {},
            }
            self._open(None, block, events)
            self.tools[position] = self.index
        arguments = function.get("arguments")
        if arguments:
            delta = {"type": "input_json_delta", "partial_json": arguments}
            events.append(self._delta(delta, self.tools[position]))

    def _open(self, kind: str | None, block: dict, events: list[Event]) -> None:
        """Start a block unless one of this kind is open (tool calls always start one)."""
        if kind is not None and self.open == kind:
            return
        self._close(events)
        self.index += 1
        self.open = kind or "tool_use"
        start = {"type": "content_block_start", "index": self.index, "content_block": block}
        events.append(("content_block_start", start))

    def _close(self, events: list[Event]) -> None:
        if self.open is not None:
            events.append(
                ("content_block_stop", {"type": "content_block_stop", "index": self.index})
            )
            self.open = None

    def _delta(self, delta: dict, index: int | None = None) -> Event:
        at = self.index if index is None else index
        return ("content_block_delta", {"type": "content_block_delta", "index": at, "delta": delta})


_PING: Event = ("ping", {"type": "ping"})
