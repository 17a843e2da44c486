"""Small helpers for calling services over real gRPC in tests."""

from __future__ import annotations

import contextlib
import urllib.request

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from prometheus_client.parser import text_string_to_metric_families


def or_not_found(call):
    """`call()`'s answer, or None when it answers NOT_FOUND (a service that learns what the call
    names from another's events has not heard of it yet)."""
    try:
        return call()
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return None


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


@contextlib.contextmanager
def expect_error(code: grpc.StatusCode, *, field: str | None = None, contains: str | None = None):
    """Asserts the block raises an RpcError with `code` (and a BadRequest naming `field`)."""
    with pytest.raises(grpc.RpcError) as caught:
        yield caught
    error = caught.value
    assert error.code() == code, f"expected {code.name}, got {error.code().name}: {error.details()}"
    if contains:
        assert contains in error.details(), error.details()
    if field is not None:
        fields = bad_request_fields(error)
        assert field in fields, f"expected a violation of {field!r}, got {fields} ({error.details()})"


def bad_request_fields(error: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(error)
    fields: list[str] = []
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    return fields


def handled_total(http_base: str, method: str) -> float:
    """Calls of `method` a service answered OK, from its /metrics (all its processes)."""
    with urllib.request.urlopen(f"{http_base}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "grpc_server_handled_total" and s.labels.get("grpc_method") == method
               and s.labels.get("code") == "OK")
