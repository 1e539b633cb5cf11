"""Per-request context: the gateway of this app, the request id, the caller's key."""

from __future__ import annotations

import re
import uuid

from flask import current_app, g, request

from ..errors import FacadeError, RateLimitError, UnavailableError
from ..gateway import Gateway
from ..keys import ApiKey

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def gateway() -> Gateway:
    return current_app.extensions["facade"]


def request_id() -> str:
    """The caller's X-Request-ID when it is sane, else the server's own; fixed per request.

    This is the id the caller sees (echoed, sent upstream, in errors and log lines). Usage
    is keyed by `server_request_id()`, which no caller can make collide with another's."""
    rid = g.get("request_id")
    if rid is None:
        given = client_request_id()
        rid = given if given is not None else server_request_id()
        g.request_id = rid
    return rid


def server_request_id() -> str:
    """A fresh id made here for this request (the usage row's unique key)."""
    rid = g.get("server_request_id")
    if rid is None:
        rid = g.server_request_id = uuid.uuid4().hex
    return rid


def client_request_id() -> str | None:
    """The caller's X-Request-ID when it sent a sane one."""
    given = request.headers.get("X-Request-ID")
    return given if given and _REQUEST_ID.match(given) else None


def caller(authorization: str | None = None) -> ApiKey:
    """Authenticate the Bearer key (or the `authorization` given) once per request."""
    key = g.get("api_key")
    if key is None:
        key = gateway().authenticate(authorization or request.headers.get("Authorization"))
        g.api_key = key
        outcome = g.get("outcome")
        if outcome is not None:
            outcome.key_name, outcome.key_prefix = key.name, key.prefix
    return key


def refuse_when_draining() -> None:
    """New model calls are refused while the instance drains: another replica should serve
    them, and this one has only the graceful timeout left to finish what it has."""
    if gateway().draining:
        raise UnavailableError(
            "the server is draining; retry the request", headers={"Retry-After": "1"}
        )


# Up to this size a body costs less to read and parse than the rpm pre-check's round trip to
# Redis; see `refuse_over_rate`.
CHEAP_BODY_BYTES = 64 * 1024


def refuse_over_rate() -> None:
    """A key already at its rpm is refused before its body is read (cheap before dear).

    When the check is a round trip (Redis) and the body is small, it is put off: admission
    counts the request exactly anyway, so the check only matters for a request refused
    before admission, and `over_rate_instead` runs it then. Either way a key over its rpm
    gets its 429 whatever its body holds, and a large body is never read for it."""
    key = g.get("api_key")
    if key is None or not key.rpm:
        return
    accounting = gateway().accounting
    length = request.content_length
    if accounting.precheck_is_remote and length is not None and length <= CHEAP_BODY_BYTES:
        g.rpm_unchecked = True
        return
    accounting.precheck(key)


def over_rate_instead(err: FacadeError) -> FacadeError:
    """The answer to a request refused before admission: its key's 429 when the rpm
    pre-check was put off (`refuse_over_rate`) and the key is over its rpm, else `err`."""
    if not g.pop("rpm_unchecked", False) or err.status == 429 or err.status >= 500:
        return err
    outcome = g.get("outcome")
    if outcome is not None and outcome.admission_tried:
        return err
    try:
        gateway().accounting.precheck(g.api_key)
    except RateLimitError as refused:
        return refused
    except FacadeError:  # the store is down: the client's own error is still true
        return err
    return err


def max_messages() -> int:
    return gateway().config.max_messages


def authenticate() -> None:
    """A before_request hook: reject the request unless its key is valid."""
    caller()


def authenticate_anthropic() -> None:
    """A before_request hook for Anthropic clients: `x-api-key: <key>`, or Bearer as anywhere."""
    api_key = request.headers.get("x-api-key")
    caller(None if request.headers.get("Authorization") or not api_key else f"Bearer {api_key}")
