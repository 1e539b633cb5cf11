"""The company envelope `{success, code, message, data}`, built here and nowhere else."""

from __future__ import annotations

from typing import Any

from . import jsonutil
from .errors import FacadeError

SUCCESS_MESSAGE = "successful"
DONE_EVENT = b"data: [DONE]\n\n"


def ok(data: Any, code: int = 200) -> dict:
    return {"success": True, "code": str(code), "message": SUCCESS_MESSAGE, "data": data}


def fail(err: FacadeError, request_id: str | None) -> dict:
    return {
        "success": False,
        "code": str(err.status),
        "message": err.message,
        "data": {"error": {"type": err.type, "param": err.param}, "request_id": request_id},
    }


def ok_bytes(data: Any, code: int = 200) -> bytes:
    return jsonutil.dumps(ok(data, code))


def sse_event(payload: dict) -> bytes:
    """One server-sent event carrying `payload` as JSON."""
    return b"data: " + jsonutil.dumps(payload) + b"\n\n"


def ok_event(chunk: dict) -> bytes:
    return sse_event(ok(chunk))


def fail_event(err: FacadeError, request_id: str | None) -> bytes:
    return sse_event(fail(err, request_id))


class EnvelopeStream:
    """Presents a stream as enveloped SSE events (see facade.api.relay.Presenter)."""

    done = DONE_EVENT

    @staticmethod
    def chunk(chunk: dict) -> bytes:
        return ok_event(chunk)

    @staticmethod
    def error(err: FacadeError, request_id: str) -> bytes:
        return fail_event(err, request_id)
