"""One JSON error format for every HTTP answer of the platform (the gateway, media's files,
certificate pages): Google's JSON error model.

    {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "...",
               "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                            "fieldViolations": [{"field": "name", "description": "..."}]}]}}

`code` is the HTTP status (google.rpc's mapping from the gRPC status), `status` the gRPC status
name, and a form marks the fields the BadRequest names.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc
from flask import Flask, Response

from .errors import DomainError

HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNIMPLEMENTED: 501,
}
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
# what a path outside every route answers: JSON, never an HTML error page
_HTTP_ONLY = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "INVALID_ARGUMENT",
              416: "OUT_OF_RANGE", 500: "INTERNAL"}


def json_response(http_status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=http_status, mimetype="application/json",
                    headers=headers)


def json_error(http_status: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> Response:
    error: dict[str, Any] = {"code": http_status, "status": status, "message": message}
    if details:
        error["details"] = details
    return json_response(http_status, {"error": error})


def bad_request(violations: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """BadRequest details for (field, description) pairs."""
    if not violations:
        return []
    return [{"@type": BAD_REQUEST_TYPE,
             "fieldViolations": [{"field": field, "description": why} for field, why in violations]}]


def from_domain_error(error: DomainError, http_status: int | None = None) -> Response:
    """A domain error as the gRPC interceptor would answer it, in HTTP."""
    return json_error(http_status or HTTP_STATUS.get(error.code, 500), error.code.name, error.message,
                      bad_request(getattr(error, "violations", ())))


def register_json_errors(app: Flask) -> None:
    for http_status, status in _HTTP_ONLY.items():
        def handler(error: Exception, http_status: int = http_status, status: str = status) -> Response:
            message = getattr(error, "description", None) if http_status != 500 else "internal error"
            return json_error(http_status, status, message or status)
        app.register_error_handler(http_status, handler)
