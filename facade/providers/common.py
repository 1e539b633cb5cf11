"""Small pieces every protocol module needs, written once."""

from __future__ import annotations

from .. import jsonutil
from ..errors import InvalidRequestError, UpstreamError
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
