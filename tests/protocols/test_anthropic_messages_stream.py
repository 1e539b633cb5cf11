"""chat.completion.chunk -> Anthropic stream events: pure translation, dicts in and out."""

from __future__ import annotations

import orjson

from facade.protocols.anthropic_messages_stream import MessageEvents, encode


def chunk(delta: dict | None = None, finish: str | None = None, **extra) -> dict:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-1", "model": "facade-model", "choices": choices, **extra}


def run(chunks: list[dict], stops: list | None = None) -> list[tuple[str, dict]]:
    events = MessageEvents("rid", 12, stops)
    out = []
    for c in chunks:
        out += events.from_chunk(c)
    return out + events.closing()


def kinds(events) -> list[str]:
    return [k for k, _ in events]


def test_text_stream():
    events = run(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({}, "stop"),
            chunk(usage={"prompt_tokens": 9}, metrics={"input_tokens": 9, "output_tokens": 2}),
        ]
    )
    assert kinds(events) == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["id"] == "msg_rid" and start["model"] == "facade-model"
    assert start["usage"] == {"input_tokens": 12, "output_tokens": 0}  # the estimate
    assert events[3][1]["delta"] == {"type": "text_delta", "text": "Hel"}
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["input_tokens"] == 9 and delta["usage"]["output_tokens"] == 2


def test_reasoning_then_text_then_tool_calls():
    events = run(
        [
            chunk({"role": "assistant", "reasoning_content": "think"}),
            chunk({"reasoning_content": "ing"}),
            chunk({"content": "I'll call."}),
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "c1", "function": {"name": "f", "arguments": ""}}
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]}),
            chunk(
                {
                    "tool_calls": [
                        {"index": 1, "id": "c2", "function": {"name": "g", "arguments": "{}"}}
                    ]
                }
            ),
            chunk({}, "tool_calls"),
        ]
    )
    starts = [e["content_block"] for k, e in events if k == "content_block_start"]
    assert [s["type"] for s in starts] == ["thinking", "text", "tool_use", "tool_use"]
    assert starts[2] == {"type": "tool_use", "id": "c1", "name": "f", "input": {}}
    deltas = [(e["index"], e["delta"]) for k, e in events if k == "content_block_delta"]
    assert deltas == [
        (0, {"type": "thinking_delta", "thinking": "think"}),
        (0, {"type": "thinking_delta", "thinking": "ing"}),
        (1, {"type": "text_delta", "text": "I'll call."}),
        (2, {"type": "input_json_delta", "partial_json": '{"a":'}),
        (2, {"type": "input_json_delta", "partial_json": " 1}"}),
        (3, {"type": "input_json_delta", "partial_json": "{}"}),
    ]
    stops = [e["index"] for k, e in events if k == "content_block_stop"]
    assert stops == [0, 1, 2, 3]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_stop_sequence_named_by_the_upstream():
    events = run(
        [
            chunk({"content": "x"}),
            {
                **chunk({}, "stop"),
                "choices": [
                    {"index": 0, "delta": {}, "finish_reason": "stop", "stop_reason": "END"}
                ],
            },
        ],
        ["END"],
    )
    assert events[-2][1]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}


def test_native_events_pass_as_they_came():
    native = [
        {"type": "message_start", "message": {"id": "msg_up", "model": "claude-up", "content": []}},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "S"},
        },
        {"type": "message_stop"},
    ]
    events = MessageEvents("rid", 1, None)
    out = []
    for event in native:
        out += events.from_chunk(chunk(None, native=event))
    assert out[0][1]["message"] == {"id": "msg_up", "model": "facade-model", "content": []}
    assert [e for _, e in out[1:]] == native[1:]
    assert events.closing() == []


def test_closing_without_any_chunk_still_makes_a_whole_message():
    events = MessageEvents("rid", 1, None)
    assert kinds(events.closing()) == ["message_start", "ping", "message_delta", "message_stop"]


def test_encode():
    raw = encode([("ping", {"type": "ping"})])
    assert raw == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert orjson.loads(raw.split(b"data: ")[1]) == {"type": "ping"}
