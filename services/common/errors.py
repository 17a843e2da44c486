"""Domain errors. Business code raises these; the gRPC error interceptor turns them into status
codes (with google.rpc details), so servicers never deal with status codes themselves."""

from __future__ import annotations

import grpc


class DomainError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """Bad input. Carries one violation per offending field (google.rpc.BadRequest)."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: list[tuple[str, str]]):
        self.violations = violations
        super().__init__("; ".join(f"{field}: {why}" for field, why in violations))

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        return cls([(field, description)])


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, kind: str, ident: str):
        super().__init__(f"{kind} {ident!r} not found")
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
    """A per-process limit is reached (open streams and the like); the caller may retry later."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(DomainError):
    """A dependency (database, broker, peer service) cannot be reached right now."""

    code = grpc.StatusCode.UNAVAILABLE
