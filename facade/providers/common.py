"""Small pieces every protocol module needs, written once."""

from __future__ import annotations

from .. import jsonutil
from ..errors import InvalidRequestError, UnsupportedParameterError, UpstreamError
from .sse import SSEEvent


def event_json(event: SSEEvent) -> dict:
    """A stream event's data as a JSON object; anything else means the upstream is broken."""
    try:
        data = jsonutil.loads(event.data)
    except jsonutil.JSONDecodeError:
        raise UpstreamError("the upstream sent a stream event that is not JSON") from None
    if not isinstance(data, dict):
        raise UpstreamError("the upstream sent a stream event of an unexpected shape")
    return data


def tool_arguments(arguments: str, param: str, kind: str) -> dict:
    """OpenAI sends tool arguments as a JSON string; vendors that want an object get one."""
    if not arguments.strip():
        return {}
    try:
        value = jsonutil.loads(arguments)
    except jsonutil.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequestError(
            f"tool call arguments must be a JSON object for the {kind} provider",
            param=f"{param}.function.arguments",
        )
    return value


def token_counts(usage: object, names: tuple[str, ...]) -> list[int] | None:
    """A vendor usage object's counters by name, a missing one 0; None when the object or a
    counter is odd (not a non-negative integer): the pipeline then estimates the counts, where
    `int()` of a string would have failed the answer and a negative count lowered the cost."""
    if not isinstance(usage, dict):
        return None
    counts = []
    for name in names:
        value = usage.get(name)
        if value is None:
            counts.append(0)
        elif type(value) is int and value >= 0:
            counts.append(value)
        else:
            return None
    return counts


def split_data_url(url: str) -> tuple[str, str] | None:
    """`data:<type>;base64,<data>` -> (type, data); None for anything else (vendors that take
    inline media want the type and the base64 apart)."""
    head, sep, data = url.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        return None
    return head[5:-7], data


# Thinking budgets (tokens) for OpenAI's `reasoning_effort`, for vendors that take a budget.
THINKING_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576, "xhigh": 32768}
_PRICED_TIERS = ("flex", "scale", "priority")


def chat_tools(body: dict) -> tuple[list[dict], object]:
    """(function definitions, tool choice) from `tools`, with the legacy `functions` and
    `function_call` read as the same thing: every vendor here knows only tools."""
    functions = [t["function"] for t in body.get("tools") or ()]
    functions += body.get("functions") or ()
    choice = body.get("tool_choice")
    if choice is None and body.get("function_call") is not None:
        legacy = body["function_call"]
        choice = {"type": "function", "function": legacy} if isinstance(legacy, dict) else legacy
    return functions, choice


def refuse_openai_only(body: dict, kind: str) -> None:
    """Chat parameters with no counterpart at this vendor that would change the answer (or
    its price class): a 400 naming each, unless its value is the default anyway."""
    if body.get("verbosity") not in (None, "medium"):
        raise UnsupportedParameterError("verbosity", kind, "no verbosity control")
    modalities = body.get("modalities")
    if modalities and modalities != ["text"]:
        raise UnsupportedParameterError("modalities", kind, "text output only")
    if body.get("audio") is not None:
        raise UnsupportedParameterError("audio", kind, "no audio output")
    if body.get("prediction") is not None:
        raise UnsupportedParameterError("prediction", kind, "no predicted outputs")
    if body.get("web_search_options") is not None:
        raise UnsupportedParameterError(
            "web_search_options", kind, "web search is not translated for this vendor"
        )
    if body.get("service_tier") in _PRICED_TIERS:
        raise UnsupportedParameterError(
            "service_tier", kind, f"no {body['service_tier']} processing tier"
        )
