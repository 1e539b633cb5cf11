"""Chat chunks -> Responses stream events: pure translation, dicts in and out."""

from __future__ import annotations

from facade.protocols.responses_stream import ResponseEvents

METRICS = {"input_tokens": 3, "output_tokens": 2}


def chunk(delta: dict | None = None, finish: str | None = None) -> dict:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": choices}


def run(*chunks: dict) -> tuple[ResponseEvents, list[dict]]:
    events = ResponseEvents({"input": "x"}, "resp_ab", 1)
    out = []
    for c in chunks:
        out += events.chunk(c)
    out += events.complete(METRICS, {"completion_tokens_details": {"reasoning_tokens": 1}})
    return events, out


def test_text_stream():
    events, out = run(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, "stop"),
    )
    assert [e["type"] for e in out] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    assert out[0]["response"]["status"] == "in_progress" and out[0]["response"]["model"] == "m"
    assert out[6]["text"] == "Hello" and out[8]["item"]["content"][0]["text"] == "Hello"
    final = out[-1]["response"]
    assert final["status"] == "completed" and final["output_text"] == "Hello"
    assert final["usage"]["output_tokens_details"] == {"reasoning_tokens": 1}
    assert events.final is final


def test_text_then_tool_calls():
    call = {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}
    _, out = run(
        chunk({"content": "let me check"}),
        chunk({"tool_calls": [call]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
        chunk({}, "tool_calls"),
    )
    assert [e["type"] for e in out] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",  # the text closes before the first call opens
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = next(e for e in out if e["type"] == "response.function_call_arguments.done")
    assert done["arguments"] == '{"a":1}' and done["output_index"] == 1
    final = out[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["message", "function_call"]
    assert final["output"][1]["call_id"] == "c1" and final["output"][1]["status"] == "completed"


def test_length_finish_is_incomplete_and_failure_is_failed():
    _, out = run(chunk({"content": "x"}), chunk({}, "length"))
    assert out[-1]["type"] == "response.incomplete"
    assert out[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    events = ResponseEvents({"input": "x"}, "resp_ab")
    first = events.chunk(chunk({"content": "x"}))
    failed = events.failed("upstream_error", "the upstream broke")
    assert failed[-1]["type"] == "response.failed"
    assert failed[-1]["sequence_number"] == len(first)
    assert failed[-1]["response"]["error"] == {
        "code": "upstream_error",
        "message": "the upstream broke",
    }


def test_text_after_a_tool_call_opens_a_new_message_item():
    call = {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}
    _, out = run(
        chunk({"content": "first"}),
        chunk({"tool_calls": [call]}),
        chunk({"content": "then"}),
        chunk({}, "tool_calls"),
    )
    done: set[int] = set()
    for event in out:  # no event about an item after that item is done
        if "output_index" in event and event["type"] != "response.output_item.added":
            assert event["output_index"] not in done, event
        if event["type"] == "response.output_item.done":
            done.add(event["output_index"])
    final = out[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["message", "function_call", "message"]
    assert len({i["id"] for i in final["output"]}) == 3
    assert final["output_text"] == "firstthen"
