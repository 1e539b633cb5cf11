"""Route a fake upstream request to the vendor protocol it speaks."""

from __future__ import annotations

import json
import re
import time

from .upstream import (
    FakeUpstream,
    Plan,
    count_prompt_words,
    model_directives,
    parse_directives,
    text_of,
)


def route(method: str, path: str):
    if method != "POST":
        return None
    if path.endswith("/chat/completions"):
        return openai_chat
    if path.endswith("/embeddings"):
        return openai_embeddings
    if path.endswith("/v1/messages"):
        from . import anthropic

        return anthropic.messages
    if path.endswith("/v1/messages/count_tokens"):
        from . import anthropic

        return anthropic.count_tokens
    if re.search(
        r"/models/[^/:]+:(generateContent|streamGenerateContent|embedContent|batchEmbedContents)$",
        path,
    ):
        from . import gemini

        return gemini.handle
    return None


def openai_plan(body: dict) -> Plan:
    messages = body.get("messages") or []
    last_user = next(
        (text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    if messages and messages[-1].get("role") == "tool":
        last_user = ""  # after tool results the model answers; the directives were spent
    directives = {**model_directives(body.get("model", "")), **parse_directives(last_user)}
    prompt = count_prompt_words([text_of(m.get("content")) for m in messages])
    return Plan(directives, prompt)


def fault(fake: FakeUpstream, plan: Plan, start_response, error_body):
    """The shared misbehaviours before any byte: slow, status, bad JSON. None when healthy."""
    if plan.f("slow"):
        import gevent

        gevent.sleep(plan.f("slow"))
    status = int(plan.d.get("status", "200"))
    if status != 200:
        headers = [("Retry-After", plan.d["retry_after"])] if "retry_after" in plan.d else []
        return fake._json(start_response, status, error_body(status), headers)
    if plan.has("badjson"):
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{this is not json"]
    return None


def openai_error(status: int) -> dict:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error"}
    message = {
        400: "This model's maximum context length is 16385 tokens (fake).",
        401: "Incorrect API key provided: sk-upst************xyz (fake).",
        429: "Rate limit reached (fake).",
    }.get(status, f"fake upstream failure {status}")
    return {"error": {"message": message, "type": kinds.get(status, "server_error"), "code": None}}


def openai_chat(fake: FakeUpstream, record: dict, start_response):
    body = record["body"] or {}
    plan = openai_plan(body)
    early = fault(fake, plan, start_response, openai_error)
    if early is not None:
        return early
    model = body.get("model")
    cid = f"chatcmpl-fake-{int(time.time() * 1000)}"
    usage = openai_usage(plan, record)
    if plan.has("tool"):
        return _openai_tool_call(fake, record, start_response, plan, body, cid, usage)
    if not body.get("stream"):
        return fake._json(
            start_response,
            200,
            {
                "id": cid,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": plan.text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            },
        )
    return fake.stream(start_response, record, plan, _openai_events(plan, cid, model, usage))


TOOL_ARGUMENTS = '{"city": "Paris"}'


def _openai_tool_call(fake, record, start_response, plan, body, cid, usage):
    """tool=NAME: answer with one call to NAME with the arguments {"city": "Paris"}."""
    call = {"id": "call_fake01", "type": "function"}
    base = {"id": cid, "created": int(time.time()), "model": body.get("model")}
    if not body.get("stream"):
        function = {"name": plan.d["tool"], "arguments": TOOL_ARGUMENTS}
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [{**call, "function": function}],
        }
        choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
        answer = {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
        return fake._json(start_response, 200, answer)
    base["object"] = "chat.completion.chunk"

    def delta(d: dict, finish=None) -> bytes:
        return _sse({**base, "choices": [{"index": 0, "delta": d, "finish_reason": finish}]})

    half = len(TOOL_ARGUMENTS) // 2
    pieces = [TOOL_ARGUMENTS[:half], TOOL_ARGUMENTS[half:]]
    events = [
        delta({"role": "assistant", "content": None}),
        delta(
            {
                "tool_calls": [
                    {"index": 0, **call, "function": {"name": plan.d["tool"], "arguments": ""}}
                ]
            }
        ),
        *(delta({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces),
        delta({}, "tool_calls"),
        _sse({**base, "choices": [], "usage": usage}),
        b"data: [DONE]\n\n",
    ]
    return fake.stream(start_response, record, plan, iter(events))


def openai_usage(plan: Plan, record: dict) -> dict:
    """OpenAI's usage: cached tokens are part of prompt_tokens (cached=N adds N prompt tokens,
    read from the cache), reasoning part of completion_tokens (reasoning=N: N of them)."""
    body = record["body"] or {}
    cap = body.get("max_completion_tokens") or body.get("max_tokens")
    prompt, completion = plan.billed(
        record, cap, body.get("n"), (plan.prompt_tokens, len(plan.tokens))
    )
    cached = plan.count("cached")
    prompt += cached
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
    if plan.has("reasoning"):
        usage["completion_tokens_details"] = {"reasoning_tokens": plan.count("reasoning")}
    return usage


def _sse(obj) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


def _openai_events(plan: Plan, cid: str, model: str, usage: dict):
    base = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    cut = int(plan.d["cut"]) if "cut" in plan.d else None
    mid = int(plan.d["midstream"]) if "midstream" in plan.d else None
    sent = 0
    chunks = [
        {
            **base,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ],
        }
    ]
    chunks += [
        {
            **base,
            "choices": [{"index": 0, "delta": {"content": plan.piece(i)}, "finish_reason": None}],
        }
        for i in range(len(plan.tokens))
    ]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if not plan.has("nousage"):
        chunks.append({**base, "choices": [], "usage": usage})
    for chunk in chunks:
        if cut is not None and sent >= cut:
            return
        if mid is not None and sent >= mid:
            yield _sse(
                {"error": {"message": "fake upstream failed mid-stream", "type": "server_error"}}
            )
            return
        yield _sse(chunk)
        sent += 1
    yield b"data: [DONE]\n\n"


def openai_embeddings(fake: FakeUpstream, record: dict, start_response):
    body = record["body"] or {}
    inputs = body.get("input")
    inputs = [inputs] if isinstance(inputs, str) else (inputs or [])
    plan = Plan(
        {**model_directives(body.get("model", "")), **parse_directives(" ".join(map(str, inputs)))},
        0,
    )
    early = fault(fake, plan, start_response, openai_error)
    if early is not None:
        return early
    tokens = count_prompt_words([str(i) for i in inputs])
    tokens = plan.billed(record, None, 1, (tokens, 0))[0]  # bill4: the body's size
    data = [
        {"object": "embedding", "index": i, "embedding": [0.1 * (i + 1), 0.2, 0.3]}
        for i in range(len(inputs))
    ]
    return fake._json(
        start_response,
        200,
        {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
    )
