"""gRPC server bootstrap: the kit's interceptors (interceptors.py: trace, metrics and access log,
error mapping, auth, call policy); standard health (Check, Watch sending changes only, List) and
reflection (v1 and v1alpha, reflection.py); graceful shutdown.
"""

from __future__ import annotations

import threading
from concurrent import futures
from collections.abc import Callable, Iterable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from . import interceptors, reflection
from .audit import CallPolicy
from .auth import TokenVerifier
from .config import GrpcTls
from .interceptors import HEALTH_SERVICE


def server_credentials(tls: GrpcTls) -> grpc.ServerCredentials:
    """TLS with this service's certificate; with `client_auth`, only clients whose certificate
    the CA signed get through (mTLS)."""
    return grpc.ssl_server_credentials(
        [(tls.read(tls.key_file), tls.read(tls.cert_file))],
        root_certificates=tls.read(tls.ca_file) if tls.client_auth else None,
        require_client_auth=tls.client_auth)


class HealthServicer(health.HealthServicer):
    """grpcio-health-checking's servicer (Check, and Watch without holding a worker thread per
    watcher) plus List, which it leaves unimplemented. The statuses come from `statuses()`."""

    def __init__(self, statuses: Callable[[], dict[str, int]]):
        super().__init__(experimental_non_blocking=True)
        self._statuses = statuses

    def List(self, request: health_pb2.HealthListRequest,
             context: grpc.ServicerContext) -> health_pb2.HealthListResponse:
        return health_pb2.HealthListResponse(statuses={
            name: health_pb2.HealthCheckResponse(status=status) for name, status in self._statuses().items()})


class GrpcServer:
    """A gRPC server with the kit's interceptor, health and reflection."""

    def __init__(self, *, port: int, verifier: TokenVerifier, workers: int = 32,
                 public_methods: Iterable[str] = (), bind_host: str = "[::]", calls: CallPolicy | None = None,
                 tls: GrpcTls | None = None, reuse_port: bool = False):
        """`reuse_port`: the processes of one pod share the port (SO_REUSEPORT, the kernel spreads
        connections); otherwise a port held by anyone is an error, never silently shared."""
        self._statuses: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stopping = False
        self.health = HealthServicer(lambda: dict(self._statuses))
        self._service_names: list[str] = [""]
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
            interceptors=interceptors.chain(verifier, public_methods, calls),
            options=[("grpc.max_receive_message_length", 8 * 1024 * 1024),
                     ("grpc.so_reuseport", int(reuse_port))],
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._port = port
        self._bind_host = bind_host
        self._tls = tls
        self.set_serving(False)

    def add(self, add_to_server: Callable[[Any, grpc.Server], None], servicer: object, full_service_name: str) -> None:
        add_to_server(servicer, self.server)
        self._service_names.append(full_service_name)
        self._set(full_service_name, health_pb2.HealthCheckResponse.NOT_SERVING)

    def start(self) -> None:
        reflection.enable(self.server, tuple(n for n in self._service_names if n) + (HEALTH_SERVICE,))
        address = f"{self._bind_host}:{self._port}"
        if self._tls is None:
            bound = self.server.add_insecure_port(address)
        else:
            bound = self.server.add_secure_port(address, server_credentials(self._tls))
        if bound == 0:
            raise RuntimeError(f"cannot listen on gRPC port {self._port}: it is in use")
        self.server.start()

    def _set(self, name: str, status: int) -> None:
        """A watcher hears of changes only: the monitor re-asserts the status every pass."""
        with self._lock:
            if self._stopping or self._statuses.get(name) == status:
                return
            self._statuses[name] = status
            self.health.set(name, status)

    def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in self._service_names:
            self._set(name, status)

    def stop(self, grace_seconds: float) -> None:
        """NOT_SERVING first (load balancers drain), then let in-flight calls finish."""
        self.set_serving(False)
        with self._lock:
            self._stopping = True  # NOT_SERVING from now on, whatever the monitor finds
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_seconds).wait(grace_seconds + 1)
