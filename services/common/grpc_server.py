"""gRPC server bootstrap: one interceptor for auth, errors and metrics; standard health (Check,
Watch sending changes only, List) and reflection (v1 and v1alpha, reflection.py); graceful
shutdown.

The interceptor, per call:
1. authenticates the bearer token (public methods may come without one) and puts the
   Principal where `auth.current_principal()` finds it;
2. maps domain errors to status codes with google.rpc details (BadRequest naming the fields),
   and anything unexpected to INTERNAL without leaking internals;
3. counts the call and its latency by service, method and code;
4. lets the CallPolicy (audit.py) see it: the client's address, the inspector's read-only rule,
   and the audit record of an admin's state-changing call.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent import futures
from collections.abc import Callable, Iterable

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from prometheus_client import Counter, Histogram
from pymongo.errors import ConnectionFailure, ExecutionTimeout

from . import reflection, tracing
from .audit import CallPolicy
from .auth import TokenVerifier, current_principal_var
from .config import GrpcTls
from .errors import DomainError, InvalidArgument, ResourceExhausted, Unauthenticated, Unavailable
from .logs import access_log

log = logging.getLogger(__name__)
# unreachable, failing over or too slow: the caller may retry (UNAVAILABLE), it is not a bug
DATABASE_AWAY = (ConnectionFailure, ExecutionTimeout)

# `code`: the gRPC status code by name, the one label for it in every service (docs/architecture.md, Metrics)
HANDLED = Counter("grpc_server_handled_total", "RPCs completed", ["grpc_service", "grpc_method", "code"])
LATENCY = Histogram(
    "grpc_server_handling_seconds", "RPC latency", ["grpc_service", "grpc_method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

HEALTH_SERVICE = "grpc.health.v1.Health"
_UNCHECKED_SERVICES = (HEALTH_SERVICE, *reflection.SERVICE_NAMES)


def _status_for(error: DomainError) -> grpc.Status:
    status = status_pb2.Status(code=error.code.value[0], message=error.message)
    if isinstance(error, InvalidArgument):
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in error.violations
        ]))
        status.details.append(detail)
    if isinstance(error, ResourceExhausted) and error.retry_after_seconds:
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.RetryInfo(retry_delay={"seconds": error.retry_after_seconds}))
        status.details.append(detail)
    return rpc_status.to_status(status)


class ServiceInterceptor(grpc.ServerInterceptor):
    def __init__(self, verifier: TokenVerifier, public_methods: Iterable[str], calls: CallPolicy | None = None):
        self._verifier = verifier
        self._public = frozenset(public_methods)
        self._calls = calls or CallPolicy("", None)

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if handler is None:
            return None
        service, _, method = details.method.lstrip("/").partition("/")
        if service in _UNCHECKED_SERVICES:
            return handler
        metadata = details.invocation_metadata or ()
        public = details.method in self._public

        def prepare():
            """Sets the trace and the principal; returns the context tokens to reset afterwards."""
            headers = {k: v for k, v in metadata if isinstance(v, str)}
            trace_token = tracing.enter(tracing.continued_from_metadata(headers))
            auth = headers.get("authorization", "")
            principal = None
            if auth:
                scheme, _, token = auth.partition(" ")
                if scheme.lower() != "bearer" or not token:
                    raise Unauthenticated("authorization metadata must be 'Bearer <token>'")
                principal, _ = self._verifier.verify(token.strip())
            elif not public:
                raise Unauthenticated("this call needs a token: send 'authorization: Bearer <token>'")
            return trace_token, current_principal_var.set(principal)

        def finish(tokens, started, code):
            elapsed = time.perf_counter() - started
            HANDLED.labels(service, method, code.name).inc()
            LATENCY.labels(service, method).observe(elapsed)
            if not access_log.disabled:
                access_log.info("rpc", extra={"rpc": details.method, "code": code.name,
                                              "ms": round(elapsed * 1000, 1)})
            if tokens:
                current_principal_var.reset(tokens[1])
                tracing.leave(tokens[0])

        def fail(context, error: Exception) -> grpc.StatusCode:
            if isinstance(error, DATABASE_AWAY):
                log.warning("database unavailable in %s: %s", details.method, type(error).__name__)
                error = Unavailable("the database did not answer in time; retry shortly")
            if isinstance(error, DomainError):
                status = _status_for(error)
                context.abort_with_status(status)
            log.exception("unhandled error in %s", details.method)
            context.abort(grpc.StatusCode.INTERNAL, "internal error; it has been logged")
            raise AssertionError("abort returns by raising")  # pragma: no cover

        def code_of(error: Exception) -> grpc.StatusCode:
            if isinstance(error, DATABASE_AWAY):
                return grpc.StatusCode.UNAVAILABLE
            return error.code if isinstance(error, DomainError) else grpc.StatusCode.INTERNAL

        @contextlib.contextmanager
        def scope(context, request):
            """Around one call: auth and trace id in, status and metrics out, errors mapped."""
            started, tokens, code, call = time.perf_counter(), None, grpc.StatusCode.OK, None
            try:
                tokens = prepare()
                call = self._calls.begin(details.method, current_principal_var.get(), metadata, context.peer(),
                                         request)
                yield call
                code = context.code() or grpc.StatusCode.OK
            except GeneratorExit:  # the client went away mid-stream
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception as error:
                if _is_abort(error, context):
                    code = context.code() or grpc.StatusCode.UNKNOWN
                    raise
                code = code_of(error)
                fail(context, error)
            finally:
                self._calls.end(call, code)
                finish(tokens, started, code)

        def unary_response(behavior):
            def wrapper(request_or_iterator, context):
                with scope(context, request_or_iterator) as call:
                    call.response = behavior(request_or_iterator, context)
                    return call.response
            return wrapper

        def stream_response(behavior):
            def wrapper(request_or_iterator, context):
                with scope(context, request_or_iterator):
                    yield from behavior(request_or_iterator, context)
            return wrapper

        kinds = (
            ("unary_unary", grpc.unary_unary_rpc_method_handler, unary_response),
            ("stream_unary", grpc.stream_unary_rpc_method_handler, unary_response),
            ("unary_stream", grpc.unary_stream_rpc_method_handler, stream_response),
            ("stream_stream", grpc.stream_stream_rpc_method_handler, stream_response),
        )
        for attr, make_handler, wrap in kinds:
            behavior = getattr(handler, attr)
            if behavior is not None:
                return make_handler(wrap(behavior), request_deserializer=handler.request_deserializer,
                                    response_serializer=handler.response_serializer)
        return handler


def server_credentials(tls: GrpcTls) -> grpc.ServerCredentials:
    """TLS with this service's certificate; with `client_auth`, only clients whose certificate
    the CA signed get through (mTLS)."""
    return grpc.ssl_server_credentials(
        [(tls.read(tls.key_file), tls.read(tls.cert_file))],
        root_certificates=tls.read(tls.ca_file) if tls.client_auth else None,
        require_client_auth=tls.client_auth)


def _is_abort(error: Exception, context) -> bool:
    # context.abort() records the code and raises a bare Exception(); that one must pass through
    return type(error) is Exception and not error.args and context.code() not in (None, grpc.StatusCode.OK)


class HealthServicer(health.HealthServicer):
    """grpcio-health-checking's servicer (Check, and Watch without holding a worker thread per
    watcher) plus List, which it leaves unimplemented. The statuses come from `statuses()`."""

    def __init__(self, statuses: Callable[[], dict[str, int]]):
        super().__init__(experimental_non_blocking=True)
        self._statuses = statuses

    def List(self, request, context):
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
            interceptors=[ServiceInterceptor(verifier, public_methods, calls)],
            options=[("grpc.max_receive_message_length", 8 * 1024 * 1024),
                     ("grpc.so_reuseport", int(reuse_port))],
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._port = port
        self._bind_host = bind_host
        self._tls = tls
        self.set_serving(False)

    def add(self, add_to_server: Callable, servicer, full_service_name: str) -> None:
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
