"""The gRPC server's interceptors, one concern each. `chain()` composes them, outermost first:

1. TraceInterceptor continues the caller's W3C trace, so every later log line and record carries it;
2. ObserveInterceptor counts the call and its latency by service, method and code, and writes the
   access log line;
3. ErrorInterceptor maps domain errors to status codes with google.rpc details (BadRequest naming
   the fields), a database that is away to UNAVAILABLE, anything else to INTERNAL without leaking
   internals;
4. AuthInterceptor authenticates the bearer token (public methods may come without one) and puts
   the Principal where `auth.current_principal()` finds it;
5. PolicyInterceptor lets the CallPolicy (audit.py) see the call: the client's address, the
   inspector's read-only rule, and the audit record of an admin's state-changing call.

The order is the behaviour: auth's and the policy's refusals are domain errors the error mapping
turns into statuses, the metrics count the mapped code, and the access line and the audit record
carry the trace id. Health and reflection pass every interceptor untouched.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any, NoReturn, TypeAlias

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from prometheus_client import Counter, Histogram
from pymongo.errors import ConnectionFailure, ExecutionTimeout

from . import reflection, tracing
from .audit import CallPolicy
from .auth import Principal, TokenVerifier, current_principal_var
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

# what wants to see a unary call's response (the audit record names the ids a call created)
ResponseSink = Callable[[Any], None]
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # generic in the stubs only
Around = Callable[[Any, grpc.ServicerContext], AbstractContextManager[ResponseSink | None]]


def service_and_method(full_method: str) -> tuple[str, str]:
    """"/wenming.points.v1.PointsService/GetBalance" -> ("wenming.points.v1.PointsService", "GetBalance")."""
    service, _, method = full_method.lstrip("/").partition("/")
    return service, method


def text_headers(details: grpc.HandlerCallDetails) -> dict[str, str]:
    return {key: value for key, value in details.invocation_metadata or () if isinstance(value, str)}


def code_so_far(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    """The code the handler set or aborted with, if any."""
    code: grpc.StatusCode | None = context.code()  # type: ignore[attr-defined]  # grpc has it since 1.38, types-grpcio not
    return code


def is_abort(error: BaseException, context: grpc.ServicerContext) -> bool:
    # context.abort() records the code and raises a bare Exception(); that one must pass through
    return type(error) is Exception and not error.args and code_so_far(context) not in (None, grpc.StatusCode.OK)


def status_code(context: grpc.ServicerContext, error: BaseException | None) -> grpc.StatusCode:
    """The code a call ends with, as any interceptor sees it: the handler's own (OK unless it set
    one), CANCELLED when the client went away mid-stream, the code of an abort, or the code
    ErrorInterceptor maps a raised error to."""
    if error is None:
        return code_so_far(context) or grpc.StatusCode.OK
    if isinstance(error, GeneratorExit):
        return grpc.StatusCode.CANCELLED
    if is_abort(error, context):
        return code_so_far(context) or grpc.StatusCode.UNKNOWN
    if isinstance(error, DATABASE_AWAY):
        return grpc.StatusCode.UNAVAILABLE
    return error.code if isinstance(error, DomainError) else grpc.StatusCode.INTERNAL


@contextlib.contextmanager
def on_end(context: grpc.ServicerContext, then: Callable[[grpc.StatusCode], None]) -> Iterator[None]:
    """Runs the body, then `then(code)` with the code the call ends with, however it ends."""
    error: BaseException | None = None
    try:
        yield
    except BaseException as raised:  # GeneratorExit too: a stream the client left
        error = raised
        raise
    finally:
        then(status_code(context, error))


class CallInterceptor(grpc.ServerInterceptor):
    """Runs `around` about every call of the services' own methods."""

    def around(self, details: grpc.HandlerCallDetails, request: Any,
               context: grpc.ServicerContext) -> AbstractContextManager[ResponseSink | None]:
        raise NotImplementedError

    def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails], Handler | None],
            details: grpc.HandlerCallDetails) -> Handler | None:
        handler = continuation(details)
        if handler is None or service_and_method(details.method)[0] in _UNCHECKED_SERVICES:
            return handler
        return wrapped(handler, functools.partial(self.around, details))


def wrapped(handler: Handler, around: Around) -> Handler:
    """`handler` with its behaviour run inside `around`, whichever of the four kinds it is."""
    kinds = (
        (handler.unary_unary, grpc.unary_unary_rpc_method_handler, _unary),
        (handler.stream_unary, grpc.stream_unary_rpc_method_handler, _unary),
        (handler.unary_stream, grpc.unary_stream_rpc_method_handler, _streaming),
        (handler.stream_stream, grpc.stream_stream_rpc_method_handler, _streaming),
    )
    for behavior, make_handler, wrap in kinds:
        if behavior is not None:
            return make_handler(wrap(behavior, around), request_deserializer=handler.request_deserializer,
                                response_serializer=handler.response_serializer)
    return handler


def _unary(behavior: Callable[[Any, grpc.ServicerContext], Any], around: Around) -> Callable[..., Any]:
    def call(request: Any, context: grpc.ServicerContext) -> Any:
        with around(request, context) as sink:
            response = behavior(request, context)
            if sink is not None:
                sink(response)
            return response
    return call


def _streaming(behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]],
               around: Around) -> Callable[..., Iterator[Any]]:
    def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        with around(request, context):
            yield from behavior(request, context)
    return call


class TraceInterceptor(CallInterceptor):
    @contextlib.contextmanager
    def around(self, details: grpc.HandlerCallDetails, request: Any,
               context: grpc.ServicerContext) -> Iterator[None]:
        with tracing.active(tracing.continued_from_metadata(text_headers(details))):
            yield None


class ObserveInterceptor(CallInterceptor):
    @contextlib.contextmanager
    def around(self, details: grpc.HandlerCallDetails, request: Any,
               context: grpc.ServicerContext) -> Iterator[None]:
        started = time.perf_counter()
        with on_end(context, lambda code: self._observe(details.method, code, time.perf_counter() - started)):
            yield None

    @staticmethod
    def _observe(full_method: str, code: grpc.StatusCode, elapsed: float) -> None:
        service, method = service_and_method(full_method)
        HANDLED.labels(service, method, code.name).inc()
        LATENCY.labels(service, method).observe(elapsed)
        if not access_log.disabled:
            access_log.info("rpc", extra={"rpc": full_method, "code": code.name, "ms": round(elapsed * 1000, 1)})


class ErrorInterceptor(CallInterceptor):
    @contextlib.contextmanager
    def around(self, details: grpc.HandlerCallDetails, request: Any,
               context: grpc.ServicerContext) -> Iterator[None]:
        try:
            yield None
        except Exception as error:
            if is_abort(error, context):
                raise
            abort_for(error, context, details.method)


def abort_for(error: Exception, context: grpc.ServicerContext, full_method: str) -> NoReturn:
    if isinstance(error, DATABASE_AWAY):
        log.warning("database unavailable in %s: %s", full_method, type(error).__name__)
        error = Unavailable("the database did not answer in time; retry shortly")
    if isinstance(error, DomainError):
        context.abort_with_status(status_for(error))
    log.exception("unhandled error in %s", full_method)
    context.abort(grpc.StatusCode.INTERNAL, "internal error; it has been logged")


def status_for(error: DomainError) -> grpc.Status:
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
    grpc_status: grpc.Status = rpc_status.to_status(status)
    return grpc_status


class AuthInterceptor(CallInterceptor):
    def __init__(self, verifier: TokenVerifier, public_methods: Iterable[str]):
        self._verifier = verifier
        self._public = frozenset(public_methods)

    @contextlib.contextmanager
    def around(self, details: grpc.HandlerCallDetails, request: Any,
               context: grpc.ServicerContext) -> Iterator[None]:
        token = current_principal_var.set(self._principal(details))
        try:
            yield None
        finally:
            current_principal_var.reset(token)

    def _principal(self, details: grpc.HandlerCallDetails) -> Principal | None:
        authorization = text_headers(details).get("authorization", "")
        if not authorization:
            if details.method in self._public:
                return None
            raise Unauthenticated("this call needs a token: send 'authorization: Bearer <token>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("authorization metadata must be 'Bearer <token>'")
        principal, _ = self._verifier.verify(token.strip())
        return principal


class PolicyInterceptor(CallInterceptor):
    def __init__(self, calls: CallPolicy):
        self._calls = calls

    @contextlib.contextmanager
    def around(self, details: grpc.HandlerCallDetails, request: Any,
               context: grpc.ServicerContext) -> Iterator[ResponseSink]:
        call = self._calls.begin(details.method, current_principal_var.get(), details.invocation_metadata or (),
                                 context.peer(), request)
        with on_end(context, functools.partial(self._calls.end, call)):
            yield call.record_response


def chain(verifier: TokenVerifier, public_methods: Iterable[str],
          calls: CallPolicy | None = None) -> list[grpc.ServerInterceptor]:
    """The kit's interceptors in the order gRPC runs them (outermost first; see the module's text)."""
    return [TraceInterceptor(), ObserveInterceptor(), ErrorInterceptor(), AuthInterceptor(verifier, public_methods),
            PolicyInterceptor(calls or CallPolicy("", None))]
