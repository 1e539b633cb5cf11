"""Turn marshmallow's nested error dicts into `(param, message)` pairs a person can read."""

from __future__ import annotations

from typing import Any


def flatten_errors(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    """`{"messages": {0: {"role": ["bad"]}}}` becomes `[("messages[0].role", "bad")]`."""
    if isinstance(messages, dict):
        out: list[tuple[str, str]] = []
        for key, value in messages.items():
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            elif key == "_schema":
                path = prefix
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            out.extend(flatten_errors(value, path))
        return out
    if isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages):
        return [(prefix, " ".join(messages))]
    if isinstance(messages, list):
        out = []
        for item in messages:
            out.extend(flatten_errors(item, prefix))
        return out
    return [(prefix, str(messages))]
