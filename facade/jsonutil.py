"""Fast JSON in one place (orjson), so every module encodes the same way."""

from __future__ import annotations

from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError


def dumps(obj: Any) -> bytes:
    """Encode to UTF-8 JSON bytes; non-str dict keys (int indexes) are allowed."""
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


_CONTAINERS = (dict, list)


def nesting(obj: Any) -> int:
    """How deep `obj` nests (a scalar is 0, `{}` is 1), level by level, without recursion.

    orjson reads up to 1024 levels but writes at most 254, so a body is checked against a
    bound before any of it is forwarded, stored or written back.
    """
    depth, level = 0, [obj] if type(obj) in _CONTAINERS else []
    while level:
        depth += 1
        below: list = []
        add = below.append
        for node in level:
            for value in node.values() if type(node) is dict else node:
                if type(value) in _CONTAINERS:
                    add(value)
        level = below
    return depth
