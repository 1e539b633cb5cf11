"""The typed errors of the gateway; `facade.api.errors` maps each to the error envelope."""

from __future__ import annotations


class FacadeError(Exception):
    """Base of every error a client may see; carries the HTTP status and the envelope type."""

    status = 500
    type = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or {}


class InvalidRequestError(FacadeError):
    status = 400
    type = "invalid_request_error"


class UnsupportedParameterError(InvalidRequestError):
    """A parameter the chosen provider cannot honour: an error, never a silent drop."""

    def __init__(self, param: str, provider_kind: str, detail: str = ""):
        why = f" ({detail})" if detail else ""
        super().__init__(
            f"'{param}' is not supported by the {provider_kind} provider{why}", param=param
        )


class AuthenticationError(FacadeError):
    status = 401
    type = "authentication_error"


class PermissionDeniedError(FacadeError):
    status = 403
    type = "permission_error"


class NotFoundError(FacadeError):
    status = 404
    type = "not_found"


class ModelNotFoundError(NotFoundError):
    type = "model_not_found"


class MethodNotAllowedError(FacadeError):
    status = 405
    type = "method_not_allowed"


class RequestTooLargeError(FacadeError):
    status = 413
    type = "request_too_large"


class UnsupportedMediaTypeError(FacadeError):
    status = 415
    type = "unsupported_media_type"


class RateLimitError(FacadeError):
    status = 429
    type = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after_s: float, param: str | None = None):
        retry = max(1, int(retry_after_s + 0.999))
        super().__init__(message, param=param, headers={"Retry-After": str(retry)})
        self.retry_after_s = retry_after_s


class BudgetExceededError(FacadeError):
    status = 429
    type = "budget_exceeded"


class UpstreamError(FacadeError):
    """The upstream failed or answered nonsense."""

    status = 502
    type = "upstream_error"
    retryable = True


class UpstreamTimeoutError(UpstreamError):
    status = 504
    type = "upstream_timeout"


class UpstreamStatusError(UpstreamError):
    """An upstream's own 4xx, passed to the client with its status and message."""

    _types = {
        400: "invalid_request_error",
        404: "model_not_found",
        413: "request_too_large",
        429: "rate_limit_exceeded",
    }

    def __init__(self, status: int, message: str, *, retry_after_s: float | None = None):
        headers = {"Retry-After": str(max(1, int(retry_after_s + 0.999)))} if retry_after_s else {}
        super().__init__(message, headers=headers)
        self.status = status
        self.type = self._types.get(status, "invalid_request_error")
        self.retry_after_s = retry_after_s
        # Another target may not be rate limited; a bad request is bad everywhere.
        self.retryable = status in (408, 409, 429)


class UnavailableError(FacadeError):
    status = 503
    type = "unavailable"


class InternalError(FacadeError):
    status = 500
    type = "internal_error"


class ClientClosedError(FacadeError):
    """The client hung up; only ever logged and counted (nginx's 499), never sent."""

    status = 499
    type = "client_closed"
