"""Chat answer -> Responses `response` object: pure translation, dicts in and out."""

from __future__ import annotations

from facade.protocols import responses_answer as answer

METRICS = {"input_tokens": 10, "output_tokens": 4, "cached_input_tokens": 3, "reasoning_tokens": 2}


def completion(message: dict, finish: str = "stop", usage: dict | None = None) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage or {},
        "metrics": METRICS,
    }


def test_text_answer():
    body = {"input": "x", "instructions": "sys", "metadata": {"a": "b"}, "store": True}
    resp = answer.from_chat(
        completion({"role": "assistant", "content": "hello"}), body, "resp_ab", 7
    )
    assert resp["id"] == "resp_ab" and resp["object"] == "response" and resp["created_at"] == 7
    assert resp["status"] == "completed" and resp["incomplete_details"] is None
    assert resp["model"] == "m" and resp["instructions"] == "sys" and resp["metadata"] == {"a": "b"}
    assert resp["output"] == [
        {
            "type": "message",
            "id": "msg_ab",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "hello", "annotations": [], "logprobs": []}
            ],
        }
    ]
    assert resp["output_text"] == "hello"
    assert resp["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 3},
        "output_tokens": 4,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 14,
    }
    assert resp["metrics"] == METRICS


def test_tool_calls_are_function_call_items_and_history():
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": '{"a":1}'}},
        ],
    }
    resp = answer.from_chat(completion(message, "tool_calls"), {"input": "x"}, "resp_ab")
    assert [(i["type"], i["call_id"], i["name"], i["id"]) for i in resp["output"]] == [
        ("function_call", "c1", "f", "fc_ab_0"),
        ("function_call", "c2", "g", "fc_ab_1"),
    ]
    assert resp["status"] == "completed" and resp["output_text"] == ""
    assert answer.assistant_message(resp["output"]) == message


def test_length_is_incomplete_and_refusals_are_parts():
    resp = answer.from_chat(
        completion({"role": "assistant", "content": "cut"}, "length"), {}, "resp_x"
    )
    assert resp["status"] == "incomplete"
    assert resp["incomplete_details"] == {"reason": "max_output_tokens"}
    refused = answer.from_chat(
        completion({"role": "assistant", "content": None, "refusal": "no"}), {}, "resp_x"
    )
    assert refused["output"][0]["content"] == [{"type": "refusal", "refusal": "no"}]
    assert answer.assistant_message(refused["output"]) is None


def test_usage_details_fall_back_to_the_upstream_usage():
    usage = answer.usage(
        {"input_tokens": 5, "output_tokens": 6},
        {
            "prompt_tokens_details": {"cached_tokens": 1},
            "completion_tokens_details": {"reasoning_tokens": 4},
        },
    )
    assert usage["input_tokens_details"] == {"cached_tokens": 1}
    assert usage["output_tokens_details"] == {"reasoning_tokens": 4}
