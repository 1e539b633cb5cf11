"""A chat.completion (with Facade's metrics) -> an Anthropic `message` object, pure.

The inverse of `facade/providers/anthropic.py`'s `parse_response`, sharing its table of stop
reasons. An answer from an Anthropic-kind target carries the upstream's own message
(`native`): it is passed as it came, so thinking blocks, signatures and cache counts survive
the round trip; only `model` is the name the caller asked for, as on every Facade answer.

Usage: Anthropic's `input_tokens` excludes cache reads and writes, which it counts apart
(`cache_read_input_tokens`, `cache_creation_input_tokens`); Facade's metrics count every input
token in `input_tokens` and name the cached parts, so they are split back here.
"""

from __future__ import annotations

from .. import jsonutil
from ..providers.anthropic import FINISH_REASONS

# finish_reason -> stop_reason: the provider's table read backwards, one Anthropic name each.
STOP_REASONS = {
    finish: stop
    for stop, finish in FINISH_REASONS.items()
    if stop in ("end_turn", "max_tokens", "tool_use", "refusal")
}
STOP_REASONS["function_call"] = "tool_use"


def message_id(chat_id: str | None, request_id: str) -> str:
    return chat_id if chat_id and chat_id.startswith("msg_") else f"msg_{request_id}"


def stop_reason(finish: str | None, matched_stop: object, stop_sequences: list | None):
    """(stop_reason, stop_sequence). OpenAI says "stop" for both a natural end and a stop
    sequence; servers that name the matched sequence (vLLM's `stop_reason`) tell them apart."""
    if (
        finish == "stop"
        and isinstance(matched_stop, str)
        and matched_stop in (stop_sequences or ())
    ):
        return "stop_sequence", matched_stop
    return STOP_REASONS.get(finish or "stop", "end_turn"), None


def usage(metrics: dict, upstream: dict | None = None) -> dict:
    """Anthropic's usage from Facade's metrics (every input token, cached parts named)."""
    cached = metrics.get("cached_input_tokens")
    if cached is None:  # metrics without the cache split: the upstream's OpenAI details
        cached = ((upstream or {}).get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    written = metrics.get("cache_write_input_tokens") or 0
    return {
        "input_tokens": max(0, metrics["input_tokens"] - cached - written),
        "output_tokens": metrics["output_tokens"],
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
    }


def tool_input(arguments: str) -> dict:
    """OpenAI's arguments string as Anthropic's input object (kept whole if it is not one)."""
    try:
        value = jsonutil.loads(arguments) if arguments.strip() else {}
    except jsonutil.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"arguments": arguments}


def content_blocks(message: dict) -> list[dict]:
    blocks: list[dict] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        blocks.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message.get("content")
    if isinstance(text, str) and text:
        blocks.append({"type": "text", "text": text})
    elif isinstance(text, list):  # content parts from a few OpenAI-compatible servers
        joined = "".join(p.get("text") or "" for p in text if isinstance(p, dict))
        if joined:
            blocks.append({"type": "text", "text": joined})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id") or "",
                "name": function.get("name") or "",
                "input": tool_input(function.get("arguments") or ""),
            }
        )
    return blocks


def to_message(data: dict, request: dict, request_id: str) -> dict:
    """The pipeline's answer (a chat.completion with `metrics`) as an Anthropic message."""
    metrics = data.get("metrics") or {}
    native = data.get("native")
    if isinstance(native, dict):
        message = {**native, "model": data.get("model") or native.get("model")}
    else:
        choice = (data.get("choices") or [{}])[0]
        reason, sequence = stop_reason(
            choice.get("finish_reason"), choice.get("stop_reason"), request.get("stop_sequences")
        )
        message = {
            "id": message_id(data.get("id"), request_id),
            "type": "message",
            "role": "assistant",
            "model": data.get("model"),
            "content": content_blocks(choice.get("message") or {}),
            "stop_reason": reason,
            "stop_sequence": sequence,
            "usage": usage(metrics, data.get("usage")) if metrics else {},
        }
    if metrics:
        message["metrics"] = metrics
    return message
