"""Outgoing gRPC calls: every call gets a deadline, the caller's token and the trace id; reads
and idempotency-keyed writes are retried when the server went away (service_config.py), so a server that
drains or restarts costs them a short wait, not an error.

    channel = client_channel("ordering:50051", default_timeout=2.0)
    stub = OrderingServiceStub(channel)
    stub.GetOrder(request)            # deadline 2 s, authorization and traceparent forwarded
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import grpc

from . import tracing
from .auth import optional_principal
from .config import GrpcTls
from .service_config import service_config_json

# what a client interceptor hands the call on to (its answer is a call future or a response iterator)
Continuation = Callable[[grpc.ClientCallDetails, Any], Any]


class _CallDetails(
    collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    pass


class _Defaults(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    def __init__(self, default_timeout: float):
        self._timeout = default_timeout

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = list(details.metadata or ())
        keys = {k for k, _ in metadata}
        principal = optional_principal()
        if "authorization" not in keys and principal is not None and principal.token:
            metadata.append(("authorization", f"Bearer {principal.token}"))
        traceparent = tracing.outgoing_header()
        if tracing.TRACEPARENT not in keys and traceparent:
            metadata.append((tracing.TRACEPARENT, traceparent))
        timeout = details.timeout if details.timeout is not None else self._timeout
        return _CallDetails(details.method, timeout, metadata, details.credentials,
                            details.wait_for_ready, details.compression)

    def intercept_unary_unary(self, continuation: Continuation, details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Continuation, details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Continuation, details: grpc.ClientCallDetails, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation: Continuation, details: grpc.ClientCallDetails, request_iterator: Any) -> Any:
        return continuation(self._details(details), request_iterator)


def channel_credentials(tls: GrpcTls) -> grpc.ChannelCredentials:
    """The server checked against the CA (the system's when none is set); this process's own
    certificate presented as the client's (for servers that demand one: mTLS)."""
    return grpc.ssl_channel_credentials(root_certificates=tls.read(tls.ca_file) if tls.ca_file else None,
                                        private_key=tls.read(tls.key_file), certificate_chain=tls.read(tls.cert_file))


def channel_options() -> list[tuple[str, object]]:
    return [("grpc.max_receive_message_length", 8 * 1024 * 1024),
            ("grpc.enable_retries", 1), ("grpc.service_config", service_config_json())]


def client_channel(target: str, default_timeout: float = 3.0, tls: GrpcTls | None = None) -> grpc.Channel:
    """A channel with the defaults above: plaintext, or TLS (and mTLS) with `tls` (GRPC_TLS_*)."""
    options = channel_options()
    if tls is None:
        channel = grpc.insecure_channel(target, options=options)
    else:
        if tls.server_name:
            options.append(("grpc.ssl_target_name_override", tls.server_name))
        channel = grpc.secure_channel(target, channel_credentials(tls), options=options)
    return grpc.intercept_channel(channel, _Defaults(default_timeout))
