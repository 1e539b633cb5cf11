"""Internal chat answer -> Responses API `response` object (pure: dicts in, dicts out).

One chat choice becomes the response's `output`: a `message` item with the text (or the
refusal), then one `function_call` item per tool call. A `length` finish is status
`incomplete` (reason max_output_tokens), a content filter is incomplete too; usage comes
from the pipeline's metrics (what was billed) with the upstream's token details.
"""

from __future__ import annotations

import secrets
import time

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_response_id() -> str:
    return "resp_" + secrets.token_hex(24)


def skeleton(
    body: dict, response_id: str, model: str | None, created_at: int | None = None
) -> dict:
    """The response object before any output: what the request asked for, echoed back."""
    reasoning = body.get("reasoning") or {}
    text = body.get("text") or {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at if created_at is not None else int(time.time()),
        "status": "in_progress",
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model or body.get("model"),
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": body.get("store", True),
        "temperature": body.get("temperature"),
        "text": {
            "format": text.get("format") or {"type": "text"},
            "verbosity": text.get("verbosity"),
        },
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p"),
        "truncation": "disabled",
        "usage": None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def message_item(
    response_id: str, text: str, status: str = "completed", output_index: int = 0
) -> dict:
    """A message output item; its id is told apart by its index when it is not the first
    output item (a stream may say more text after a tool call)."""
    suffix = f"_{output_index}" if output_index else ""
    return {
        "type": "message",
        "id": "msg_" + response_id.removeprefix("resp_") + suffix,
        "status": status,
        "role": "assistant",
        "content": [text_part(text)] if status == "completed" else [],
    }


def text_part(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def call_item(response_id: str, index: int, call_id: str, name: str, arguments: str) -> dict:
    return {
        "type": "function_call",
        "id": f"fc_{response_id.removeprefix('resp_')}_{index}",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }


def output_items(message: dict, response_id: str) -> list[dict]:
    """A chat assistant message as Responses output items."""
    items: list[dict] = []
    content, refusal = message.get("content"), message.get("refusal")
    if content:
        items.append(message_item(response_id, content))
    elif refusal:
        item = message_item(response_id, "")
        item["content"] = [{"type": "refusal", "refusal": refusal}]
        items.append(item)
    for i, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") or {}
        items.append(
            call_item(
                response_id,
                i,
                call.get("id") or f"call_{i}",
                function.get("name") or "",
                function.get("arguments") or "",
            )
        )
    return items


def output_text(items: list[dict]) -> str:
    """The SDK's `output_text`: every output_text part of every message, joined."""
    return "".join(
        part["text"]
        for item in items
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


def usage(metrics: dict, chat_usage: dict | None = None) -> dict:
    """Responses usage from the metrics (billed counts) and the upstream's token details."""
    chat_usage = chat_usage or {}
    prompt_details = chat_usage.get("prompt_tokens_details") or {}
    completion_details = chat_usage.get("completion_tokens_details") or {}
    cached = metrics.get("cached_input_tokens", prompt_details.get("cached_tokens") or 0)
    reasoning = metrics.get("reasoning_tokens", completion_details.get("reasoning_tokens") or 0)
    return {
        "input_tokens": metrics["input_tokens"],
        "input_tokens_details": {"cached_tokens": cached or 0},
        "output_tokens": metrics["output_tokens"],
        "output_tokens_details": {"reasoning_tokens": reasoning or 0},
        "total_tokens": metrics["input_tokens"] + metrics["output_tokens"],
    }


def finished(response: dict, items: list[dict], finish_reason: str | None, usage_: dict) -> dict:
    """The response once its output is complete (status, output, output_text, usage)."""
    reason = _INCOMPLETE.get(finish_reason or "")
    return {
        **response,
        "status": "incomplete" if reason else "completed",
        "incomplete_details": {"reason": reason} if reason else None,
        "output": items,
        "output_text": output_text(items),
        "usage": usage_,
    }


def from_chat(data: dict, body: dict, response_id: str, created_at: int | None = None) -> dict:
    """A whole chat.completion (with the pipeline's `metrics`) as a `response` object."""
    choice = (data.get("choices") or [{}])[0]
    items = output_items(choice.get("message") or {}, response_id)
    metrics = data.get("metrics") or {}
    response = finished(
        skeleton(body, response_id, data.get("model"), created_at),
        items,
        choice.get("finish_reason"),
        usage(metrics, data.get("usage")) if metrics else None,
    )
    if metrics:
        response["metrics"] = metrics
    return response


def assistant_message(items: list[dict]) -> dict | None:
    """Output items back as one chat assistant message: the history a later request
    continues from (`previous_response_id`)."""
    text = output_text(items)
    calls = [
        {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        for item in items
        if item["type"] == "function_call"
    ]
    if not text and not calls:
        return None
    message: dict = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message
