"""REST/JSON → gRPC: `POST /api/v1/<service>/<Method>`, the caller's token passed through.

Bodies follow the proto3 JSON mapping (lowerCamelCase names, enums by name, 64-bit integers as
strings; fields at their default value are written too, so clients need no defaults of their
own). Errors follow Google's JSON error model on every path (services/common/http_errors.py).
"""

from __future__ import annotations

import json
import time

import grpc
from flask import Blueprint, Response, request
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from prometheus_client import Counter, Histogram

from services.common.audit import CLIENT_ADDRESS_HEADER
from services.common.http_errors import HTTP_STATUS, json_error, json_response

from .openapi import openapi_document
from .upstreams import Metadata, Upstream

MAX_BODY_BYTES = 1024 * 1024

REQUESTS = Counter("gateway_requests_total", "REST calls", ["route", "status"])
LATENCY = Histogram("gateway_request_seconds", "REST call latency (including the upstream call)", ["route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


def _from_rpc_error(error: grpc.RpcError) -> Response:
    code = error.code()
    details, retry_after = [], None
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR) or detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            details.append(json_format.MessageToDict(detail))
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            retry_after = info.retry_delay.seconds
    response = json_error(HTTP_STATUS.get(code, 500), code.name, error.details() or code.name, details)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response



def reply_json(message) -> Response:
    return json_response(200, json_format.MessageToDict(message, always_print_fields_with_no_presence=True))


def api_blueprint(upstreams: dict[str, Upstream]) -> Blueprint:
    bp = Blueprint("api", __name__)
    openapi = json.dumps(openapi_document(upstreams), ensure_ascii=False)

    @bp.get("/api/v1")
    def index():
        """What this gateway exposes, for people and for generated clients."""
        return json_response(200, {name: {"service": up.full_name, "methods": sorted(up.methods)}
                           for name, up in upstreams.items()})

    @bp.get("/api/v1/openapi.json")
    def openapi_json():
        """The REST API described from the contract (viewer: /app/api-docs/)."""
        return Response(openapi, mimetype="application/json")

    @bp.post("/api/v1/<service>/<method>")
    def call(service: str, method: str):
        started = time.perf_counter()
        upstream = upstreams.get(service)
        route = f"{service}.{method}" if upstream and method in upstream.methods else "unknown"
        response = _call(upstream, service, method)
        REQUESTS.labels(route, str(response.status_code)).inc()
        LATENCY.labels(route).observe(time.perf_counter() - started)
        return response

    return bp


def call_metadata() -> Metadata:
    """What an upstream call carries of the HTTP request: the person's address and their token.
    The trace (traceparent) travels with the call through the kit's client channel; the address is
    the peer, or behind TRUSTED_PROXY_HOPS proxies what the outermost saw (waitress takes it from
    X-Forwarded-For, __main__.py)."""
    auth = request.headers.get("Authorization", "")
    return ((CLIENT_ADDRESS_HEADER, request.remote_addr or ""), *((("authorization", auth),) if auth else ()))


def _call(upstream: Upstream | None, service: str, method: str) -> Response:
    if upstream is None:
        return json_error(404, "NOT_FOUND", f"no service {service[:40]!r} behind this gateway")
    spec = upstream.methods.get(method)
    if spec is None:
        return json_error(404, "NOT_FOUND", f"{service} has no method {method[:40]!r}")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return json_error(413, "INVALID_ARGUMENT", f"request body over {MAX_BODY_BYTES} bytes")
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY_BYTES:
        return json_error(413, "INVALID_ARGUMENT", f"request body over {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        return json_error(400, "INVALID_ARGUMENT", "the body is not JSON")
    if not isinstance(body, dict):
        return json_error(400, "INVALID_ARGUMENT", "the body must be a JSON object")
    try:
        message = json_format.ParseDict(body, spec.request_class())
    except json_format.ParseError as exc:
        return json_error(400, "INVALID_ARGUMENT", f"body does not match {spec.request_class.DESCRIPTOR.name}: {str(exc)[:160]}")

    try:
        reply = upstream.call(method, message, call_metadata())
    except grpc.RpcError as error:
        return _from_rpc_error(error)
    return reply_json(reply)
