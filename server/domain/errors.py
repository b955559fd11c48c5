"""The one error tree of the domain.

Every refusal the product can give is a `DomainError(code, message, field)`; the HTTP
layer and the socket layer each turn it into the spec's error shape in exactly one
place. Subclasses only fix the status a code maps to over HTTP.

    DomainError            400 validation (default)
    ├── Unauthenticated    401 no or bad session
    ├── Forbidden          403
    ├── NotFound           404
    ├── Conflict           409
    ├── PayloadTooLarge    413
    ├── UnsupportedMedia   415
    ├── Unprocessable      422 (a well-formed upload that cannot be taken: too big, damaged)
    ├── RateLimited        429 (carries retry_after seconds)
    └── EngineUnavailable  503
"""

from __future__ import annotations


class DomainError(Exception):
    status = 400

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, field={self.field!r})"


class Unauthenticated(DomainError):
    status = 401


class Forbidden(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class PayloadTooLarge(DomainError):
    status = 413


class UnsupportedMedia(DomainError):
    status = 415


class Unprocessable(DomainError):
    status = 422


class RateLimited(DomainError):
    status = 429

    def __init__(self, retry_after: float, message: str = "too many requests") -> None:
        super().__init__("rate_limited", message)
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, str]:
        body = super().to_dict()
        body["retry_after"] = max(1, int(self.retry_after + 0.999))  # type: ignore[assignment]
        return body


class EngineUnavailable(DomainError):
    status = 503

    def __init__(self, message: str = "the storage engine is unavailable") -> None:
        super().__init__("engine_unavailable", message)
