"""The fake Anthropic Messages API (`POST /v1/messages`), honest to the wire format.

It checks what the real API checks before it answers (the `x-api-key` and
`anthropic-version` headers, `max_tokens`, known fields, roles, non-empty text blocks,
tool results that answer the previous turn's tool_use blocks) and answers in Anthropic's
shapes: a `message` object, or typed SSE events (`event: <type>` + `data: <json>`) from
`message_start` to `message_stop`. The directives are the OpenAI fake's, plus `tool=NAME`
(answer with a call to NAME with input {"city": "Paris"}); `nousage` has no meaning here,
since every Anthropic answer carries usage. `max_tokens` below the planned tokens cuts the
answer there, with stop_reason `max_tokens`. `cached=N` and `cachewrite=N` report prompt-cache
reads and writes beside `input_tokens` (which leaves them out, as Claude's does).
"""

from __future__ import annotations

import json
import time

from .protocols import fault
from .upstream import FakeUpstream, Plan, count_prompt_words, model_directives, parse_directives

_FIELDS = {
    "model",
    "messages",
    "max_tokens",
    "system",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "metadata",
    "thinking",
    "service_tier",
}
_BLOCKS = {"text", "image", "document", "tool_use", "tool_result", "thinking"}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
TOOL_INPUT = {"city": "Paris"}


def error_body(status: int, message: str | None = None) -> dict:
    kind = _ERROR_TYPES.get(status, "api_error")
    text = message or {
        400: "prompt is too long: 200001 tokens > 200000 maximum (fake)",
        429: "Number of request tokens has exceeded your per-minute rate limit (fake)",
        529: "Overloaded (fake)",
    }.get(status, f"fake upstream failure {status}")
    return {"type": "error", "error": {"type": kind, "message": text}}


def _texts(content) -> list[str]:
    """Every text a message holds, tool results included: what the prompt count counts."""
    if isinstance(content, str):
        return [content]
    out = []
    for block in content or ():
        if block.get("type") == "text":
            out.append(block.get("text", ""))
        elif block.get("type") == "tool_result":
            out.extend(_texts(block.get("content")))
    return out


def _problem(headers: dict, body) -> tuple[int, str] | None:
    if not headers.get("x-api-key"):
        return 401, "x-api-key header is required"
    if not headers.get("anthropic-version"):
        return 400, "anthropic-version: header is required"
    if not isinstance(body, dict):
        return 400, "the request body is not valid JSON"
    for name in body:
        if name not in _FIELDS:
            return 400, f"{name}: Extra inputs are not permitted"
    if not isinstance(body.get("max_tokens"), int):
        return 400, "max_tokens: Field required"
    if not isinstance(body.get("model"), str):
        return 400, "model: Field required"
    if not 0 <= body.get("temperature", 0) <= 1:
        return 400, "temperature: range: 0..1"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return 400, "messages: at least one message is required"
    previous_tool_ids: set[str] = set()
    for i, message in enumerate(messages):
        if message.get("role") not in ("user", "assistant"):
            return 400, f"messages.{i}.role: Input should be 'user' or 'assistant'"
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list):
            return 400, f"messages.{i}.content: Input should be a valid list"
        for j, block in enumerate(blocks):
            if block.get("type") not in _BLOCKS:
                return 400, f"messages.{i}.content.{j}.type: unknown block type"
            if block["type"] == "text" and not block.get("text"):
                return 400, "messages: text content blocks must be non-empty"
            if block["type"] == "tool_result" and (
                message["role"] != "user" or block.get("tool_use_id") not in previous_tool_ids
            ):
                return 400, (
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                    "`tool_result` blocks. Each `tool_result` block must have a corresponding "
                    "`tool_use` block in the previous message."
                )
        previous_tool_ids = {b.get("id") for b in blocks if b.get("type") == "tool_use"}
    return None


_COUNT_FIELDS = {"model", "messages", "system", "tools", "tool_choice", "thinking"}


def count_tokens(fake: FakeUpstream, record: dict, start_response):
    """`POST /v1/messages/count_tokens`: the prompt's words, plus 1000 so a test can tell the
    upstream's count from the gateway's estimate."""
    body = record["body"]
    extra = [name for name in body if name not in _COUNT_FIELDS] if isinstance(body, dict) else []
    problem = (
        _problem(record["headers"], {**body, "max_tokens": 1})
        if not extra
        else (
            400,
            f"{extra[0]}: Extra inputs are not permitted",
        )
    )
    if problem is not None:
        status, message = problem
        return fake._json(start_response, status, error_body(status, message))
    return fake._json(
        start_response, 200, {"input_tokens": 1000 + _plan({**body, "max_tokens": 1}).prompt_tokens}
    )


def _plan(body: dict) -> Plan:
    messages = body["messages"]
    # the last user turn decides; after tool results it holds no directives
    last_user = next(
        (" ".join(_texts(m.get("content"))) for m in reversed(messages) if m.get("role") == "user"),
        "",
    )
    directives = {**model_directives(body["model"]), **parse_directives(last_user)}
    system = body.get("system") or ""
    texts = [system] if isinstance(system, str) else [b.get("text", "") for b in system]
    for message in messages:
        texts.extend(_texts(message.get("content")))
    plan = Plan(directives, count_prompt_words(texts))
    plan.stop_reason = "tool_use" if "tool" in directives else "end_turn"
    if len(plan.tokens) > body["max_tokens"]:
        plan.tokens = plan.tokens[: body["max_tokens"]]
        plan.stop_reason = "max_tokens"
    return plan


def messages(fake: FakeUpstream, record: dict, start_response):
    body = record["body"]
    problem = _problem(record["headers"], body)
    if problem is not None:
        status, message = problem
        return fake._json(start_response, status, error_body(status, message))
    plan = _plan(body)
    _bill(plan, record)
    early = fault(fake, plan, start_response, error_body)
    if early is not None:
        return early
    mid = f"msg_fake{int(time.time() * 1000)}"
    if not body.get("stream"):
        if plan.has("tool"):
            content = [_tool_use(plan, TOOL_INPUT)]
        else:
            content = [{"type": "text", "text": plan.text}]
        message = {
            **_message(mid, body["model"], plan),
            "content": content,
            "stop_reason": plan.stop_reason,
            "usage": {**plan.input_usage, "output_tokens": plan.output_tokens},
        }
        return fake._json(start_response, 200, message)
    return fake.stream(start_response, record, plan, _events(plan, mid, body["model"]))


def _message(mid: str, model: str, plan: Plan) -> dict:
    return {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**plan.input_usage, "output_tokens": 1},
    }


def _bill(plan: Plan, record: dict) -> None:
    """The usage to report: input (with the prompt-cache counts) and output tokens."""
    default = (plan.prompt_tokens, len(plan.tokens))
    input_tokens, plan.output_tokens = plan.billed(
        record, record["body"]["max_tokens"], 1, default
    )
    plan.input_usage = {"input_tokens": input_tokens}
    if plan.has("cached") or plan.has("cachewrite"):
        plan.input_usage["cache_read_input_tokens"] = plan.count("cached")
        plan.input_usage["cache_creation_input_tokens"] = plan.count("cachewrite")


def _tool_use(plan: Plan, tool_input: dict) -> dict:
    return {"type": "tool_use", "id": "toolu_fake01", "name": plan.d["tool"], "input": tool_input}


def _sse(name: str, obj: dict) -> bytes:
    return (
        f"event: {name}\ndata: ".encode() + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"
    )


def _events(plan: Plan, mid: str, model: str):
    events = [("message_start", {"type": "message_start", "message": _message(mid, model, plan)})]
    if plan.has("tool"):
        block = _tool_use(plan, {})
        pieces = [
            {"type": "input_json_delta", "partial_json": p} for p in ("", '{"city": ', '"Paris"}')
        ]
    else:
        block = {"type": "text", "text": ""}
        pieces = [{"type": "text_delta", "text": plan.piece(i)} for i in range(len(plan.tokens))]
    events.append(
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})
    )
    events.append(("ping", {"type": "ping"}))
    for delta in pieces:
        events.append(
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        )
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": plan.stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": plan.output_tokens},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    cut = int(plan.d["cut"]) if "cut" in plan.d else None
    mid_error = int(plan.d["midstream"]) if "midstream" in plan.d else None
    for sent, (name, obj) in enumerate(events):
        if cut is not None and sent >= cut:
            return
        if mid_error is not None and sent >= mid_error:
            yield _sse("error", error_body(529, "Overloaded (fake, mid-stream)"))
            return
        yield _sse(name, obj)
