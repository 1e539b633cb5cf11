"""Token estimates for what we cannot count exactly before the call (budgets, auto, simulator),
and the output-cap rule they are paired with.

About four characters a token for English text and code, plus OpenAI's per-message overhead;
an image part is charged a fixed amount. Estimates only size reservations and context
checks: billing uses the upstream's own usage whenever it reports one.
"""

from __future__ import annotations

PER_MESSAGE = 4
PER_REQUEST = 3
PER_IMAGE = 85


def estimate_text(text: str) -> int:
    return (len(text) + 3) // 4


def estimate_messages(messages: list[dict]) -> int:
    total = PER_REQUEST
    for message in messages:
        total += PER_MESSAGE
        content = message.get("content")
        if isinstance(content, str):
            total += estimate_text(content)
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    total += estimate_text(part.get("text", ""))
                else:
                    total += PER_IMAGE
        for call in message.get("tool_calls") or ():
            function = call.get("function", {})
            total += estimate_text(function.get("name", "") + function.get("arguments", ""))
    return total


def estimate_inputs(inputs: str | list) -> int:
    """Embedding inputs: strings by length, token arrays by their length."""
    if isinstance(inputs, str):
        return estimate_text(inputs)
    if inputs and isinstance(inputs[0], int):
        return len(inputs)
    return sum(len(i) if isinstance(i, list) else estimate_text(i) for i in inputs)


def output_cap(body: dict) -> int | None:
    """The caller's output cap; `max_completion_tokens` wins when both are given."""
    cap = body.get("max_completion_tokens")
    return cap if cap is not None else body.get("max_tokens")
