"""LLMstudio engine API <-> internal chat: pure translation, dicts in and out."""

from __future__ import annotations

from facade.protocols.llmstudio import StreamLines, context, to_answer, to_chat


def test_to_chat():
    body = {"model": "m", "chat_input": "hi", "parameters": {"temperature": 0.1}}
    assert to_chat(body) == {
        "temperature": 0.1,
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
    }
    streamed = to_chat({**body, "is_stream": True, "parameters": None})
    assert streamed["stream"] is True and streamed["stream_options"] == {"include_usage": True}
    messages = [{"role": "user", "content": "x"}]
    assert context(messages) is messages


def test_to_answer_keeps_chat_fields_and_adds_llmstudios():
    data = {
        "id": "chatcmpl-up",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "yo"}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
        "metrics": {"cost_usd": 0.5},
        "native": {"drop": "me"},
    }
    request = {"model": "m", "chat_input": "hi", "session_id": "s"}
    answer = to_answer(data, request, "p", "rid")
    assert answer["chat_output"] == "yo" and answer["chat_output_stream"] == ""
    assert answer["provider"] == "p" and answer["session_id"] == "s"
    assert answer["parameters"] == {} and answer["metrics"] == {"cost_usd": 0.5}
    assert answer["context"] == [{"role": "user", "content": "hi"}]
    assert answer["created"] == 1 and "native" not in answer


def test_stream_lines_accumulate_the_output():
    lines = StreamLines({"model": "m", "chat_input": "hi"}, "p", "rid")

    def chunk(delta, finish=None):
        return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    assert lines.line(chunk({"role": "assistant", "content": ""})) is None
    first = lines.line(chunk({"content": "Hel"}))
    assert first["chat_output_stream"] == "Hel" and first["metrics"] is None
    assert lines.line(chunk({"content": "lo"}))["chat_output_stream"] == "lo"
    assert lines.line(chunk({}, "stop"))["chat_output_stream"] == ""
    last = lines.line({"choices": [], "usage": {"completion_tokens": 2}, "metrics": {"x": 1}})
    assert last["chat_output"] == "Hello" and last["metrics"] == {"x": 1}
    assert last["usage"] == {"completion_tokens": 2}
