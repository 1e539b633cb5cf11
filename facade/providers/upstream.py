"""The HTTP policy for every upstream call, in one place.

One `requests.Session` per provider per worker, `trust_env` off (no proxy or netrc lookups
per request), cookies refused (an upstream cookie must never ride along on another
tenant's call), a pool sized to the worker's connections, `(connect, read)` timeouts on
every call, no redirects, and no retries here: fallback is the router's decision.
Requests are prepared once per URL and copied per call. Transport errors become our typed
errors at the call site, with messages that never carry a URL or a header.
"""

from __future__ import annotations

import http.cookiejar
import logging
from collections.abc import Callable, Iterator

import requests

from ..config import ProviderConfig
from ..errors import UpstreamError, UpstreamStatusError, UpstreamTimeoutError
from .transport import LeanAdapter

log = logging.getLogger("facade.upstream")

ErrorParser = Callable[[int, bytes], str]
MAX_ERROR_BODY = 64 * 1024


class _RefuseAll(http.cookiejar.DefaultCookiePolicy):
    def set_ok(self, cookie, request):  # stdlib signature
        return False


def make_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.cookies.set_policy(_RefuseAll())
    adapter = LeanAdapter(pool_size)  # our own transport under requests: see transport.py
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class Upstream:
    """Posts JSON to one provider; maps every failure to an UpstreamError."""

    def __init__(self, config: ProviderConfig, headers: dict[str, str], pool_size: int):
        self.name = config.name
        self.session = make_session(pool_size)
        self.timeout = (config.connect_timeout_s, config.read_timeout_s)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        self.headers.update(config.headers)
        self.headers.update(headers)
        self._prepared: dict[str, requests.PreparedRequest] = {}

    def _template(self, url: str) -> requests.PreparedRequest:
        prepared = self._prepared.get(url)
        if prepared is None:
            prepared = requests.Request("POST", url, headers=self.headers).prepare()
            self._prepared[url] = prepared
        return prepared

    def post(
        self,
        url: str,
        body: bytes,
        *,
        request_id: str,
        parse_error: ErrorParser,
        extra_headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """Send the call; on a non-2xx answer read its error, close it, and raise.

        The answer is always opened streamed: the caller reads it whole (`read_json_body`)
        or relays it (`iter_body`), and an error body is read only up to a bound.
        """
        prepared = self._template(url).copy()
        prepared.body = body
        headers = prepared.headers
        headers["Content-Length"] = str(len(body))
        headers["X-Request-ID"] = request_id
        if extra_headers:
            headers.update(extra_headers)
        try:
            resp = self.session.send(
                prepared, timeout=self.timeout, stream=True, allow_redirects=False
            )
        except requests.Timeout:
            raise UpstreamTimeoutError(f"upstream {self.name} did not answer in time") from None
        except requests.RequestException as err:
            log.warning(
                "upstream %s unreachable: %s",
                self.name,
                type(err).__name__,
                extra={"request_id": request_id},
            )
            raise UpstreamError(f"upstream {self.name} could not be reached") from None
        if resp.status_code >= 300:
            raise self._status_error(resp, parse_error)
        return resp

    def _status_error(self, resp: requests.Response, parse_error: ErrorParser) -> UpstreamError:
        status = resp.status_code
        try:
            raw = resp.raw.read(MAX_ERROR_BODY)
        except Exception:  # the status is what matters; body is a bonus
            raw = b""
        finally:
            resp.close()
        if status in (401, 403):
            # The upstream refused *our* credentials: not the caller's fault, and the
            # upstream's message may quote part of our key.
            return UpstreamError(f"upstream {self.name} rejected the gateway's credentials")
        if 400 <= status < 500:
            retry_after = _retry_after(resp.headers.get("Retry-After"))
            message = parse_error(status, raw) or f"upstream {self.name} answered {status}"
            return UpstreamStatusError(status, message, retry_after_s=retry_after)
        if status >= 500:
            return UpstreamError(f"upstream {self.name} failed with status {status}")
        return UpstreamError(f"upstream {self.name} answered an unexpected status {status}")

    def close(self) -> None:
        self.session.close()


def read_json_body(resp: requests.Response, name: str) -> bytes:
    """The whole body of a non-streamed answer, with read failures mapped."""
    try:
        return resp.content
    except TimeoutError:
        raise UpstreamTimeoutError(f"upstream {name} did not answer in time") from None
    except (OSError, requests.RequestException):
        raise UpstreamError(f"upstream {name} broke off its answer") from None


def iter_body(resp: requests.Response, name: str) -> Iterator[bytes]:
    """Bytes of a streamed answer as they arrive (not buffered up to a fixed size)."""
    try:
        yield from resp.raw.stream()
    except TimeoutError:
        raise UpstreamTimeoutError(f"upstream {name} stopped sending in time") from None
    except OSError:
        raise UpstreamError(f"upstream {name} broke off the stream") from None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
