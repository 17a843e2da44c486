"""Domain errors. Business code raises these; the gRPC error interceptor turns them into status
codes (with google.rpc details), so servicers never deal with status codes themselves.

An error never carries the caller's input whole: a value quoted in a message goes through
`excerpt`, and every message, violation and list of violations is bounded here, whatever
raised it. (A status travels in HTTP/2 trailers; a client refuses trailers over its metadata
limit, 8 KiB by default, and then reports RESOURCE_EXHAUSTED instead of the real error.)
"""

from __future__ import annotations

import grpc

EXCERPT_CHARS = 40
MESSAGE_CHARS = 1000
DESCRIPTION_CHARS = 200
MAX_VIOLATIONS = 10


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """`value` quoted for an error message: at most `limit` characters of it, then "…"."""
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


class DomainError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str):
        message = clip(message, MESSAGE_CHARS)
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """Bad input. Carries one violation per offending field (google.rpc.BadRequest)."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: list[tuple[str, str]]):
        self.violations = [(clip(field, DESCRIPTION_CHARS), clip(why, DESCRIPTION_CHARS))
                           for field, why in violations[:MAX_VIOLATIONS]]
        more = len(violations) - len(self.violations)
        super().__init__("; ".join(f"{field}: {why}" for field, why in self.violations)
                         + (f"; and {more} more" if more > 0 else ""))

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        return cls([(field, description)])


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, kind: str, ident: str):
        super().__init__(f"{kind} {excerpt(ident)} not found")
        self.kind, self.ident = kind, ident


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    """An illegal state transition or a rule the current state forbids."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(DomainError):
    """A concurrent change won; the caller may re-read and retry."""

    code = grpc.StatusCode.ABORTED


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(DomainError):
    """A limit is reached (open streams, login attempts); the caller may retry later — after
    `retry_after_seconds`, when given (sent as google.rpc.RetryInfo)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after_seconds: int = 0):
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class Unavailable(DomainError):
    """A dependency (database, broker, peer service) cannot be reached right now."""

    code = grpc.StatusCode.UNAVAILABLE
