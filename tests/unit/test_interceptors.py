"""Each of the gRPC server's interceptors (services/common/interceptors.py) on its own and the
chain as GrpcServer composes it, with a fake context and handler: no server, no network."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from pymongo.errors import ServerSelectionTimeoutError

from services.common import interceptors, tracing
from services.common.audit import Call
from services.common.auth import Principal, TokenIssuer, TokenVerifier, current_principal, generate_keypair_pem
from services.common.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from services.common.logs import access_log
from wenming.common.v1 import common_pb2 as c

METHOD = "/wenming.demo.v1.DemoService/Get"
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
PRINCIPAL = Principal(subject="adm_1", district_id="d", role=c.ROLE_UNIT_ADMIN, unit_id="u2",
                      unit_level=c.UNIT_LEVEL_STATION, unit_path=("u1", "u2"), display_name="站长")


class Details(NamedTuple):
    method: str
    invocation_metadata: tuple[tuple[str, str], ...] = ()


class FakeContext:
    def __init__(self) -> None:
        self._code: grpc.StatusCode | None = None
        self.details = ""
        self.status: grpc.Status | None = None

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def peer(self) -> str:
        return "ipv4:10.1.2.3:5678"

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self.details = code, details
        raise Exception()  # as grpc's does

    def abort_with_status(self, status: grpc.Status) -> None:
        self.status = status
        self.abort(status.code, status.details)


def serve(interceptor_list: list[grpc.ServerInterceptor], behavior: Any, *,
          metadata: tuple[tuple[str, str], ...] = ()) -> tuple[Any, FakeContext]:
    """Calls `behavior` through the interceptors as grpc would; returns (the answer or the error, the context)."""
    handler = grpc.unary_unary_rpc_method_handler(behavior)
    details = Details(METHOD, metadata)
    for interceptor in reversed(interceptor_list):
        handler = interceptor.intercept_service(lambda _, inner=handler: inner, details)
    context = FakeContext()
    try:
        return handler.unary_unary("request", context), context
    except Exception as error:
        return error, context


def handled(code: str, method: str = "Get") -> float:
    value = interceptors.HANDLED.labels("wenming.demo.v1.DemoService", method, code)._value.get()
    return float(value)


def test_trace_continues_the_callers_and_ends_with_the_call():
    seen = []
    serve([interceptors.TraceInterceptor()], lambda request, context: seen.append(tracing.current_trace_id()),
          metadata=(("traceparent", f"00-{CALLER_TRACE}-b7ad6b7169203331-01"),))
    assert seen == [CALLER_TRACE] and tracing.current() is None


def test_observe_counts_times_and_logs_each_outcome(caplog):
    access_log.disabled = False
    try:
        before = handled("OK"), handled("NOT_FOUND"), handled("CANCELLED", "Watch")
        with caplog.at_level(logging.INFO, logger="wenming.access"):
            serve([interceptors.ObserveInterceptor()], lambda request, context: "fine")
            serve([interceptors.ObserveInterceptor()],
                  lambda request, context: context.abort(grpc.StatusCode.NOT_FOUND, "gone"))
        assert (handled("OK"), handled("NOT_FOUND")) == (before[0] + 1, before[1] + 1)
        lines = [r for r in caplog.records if r.name == "wenming.access"]
        assert [(r.msg, r.rpc, r.code) for r in lines] == [("rpc", METHOD, "OK"), ("rpc", METHOD, "NOT_FOUND")]
        assert all(isinstance(r.ms, float) for r in lines)

        def endless(request, context):
            while True:
                yield "tick"
        handler = interceptors.ObserveInterceptor().intercept_service(
            lambda _: grpc.unary_stream_rpc_method_handler(endless), Details("/wenming.demo.v1.DemoService/Watch"))
        stream = handler.unary_stream("request", FakeContext())
        next(stream)
        stream.close()  # the client went away mid-stream
        assert handled("CANCELLED", "Watch") == before[2] + 1
    finally:
        access_log.disabled = True


def raising(error: Exception) -> Any:
    def behavior(request, context):
        raise error
    return behavior


def test_errors_map_domain_errors_with_details():
    error, context = serve([interceptors.ErrorInterceptor()], raising(InvalidArgument([("name", "required")])))
    assert type(error) is Exception and context.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = dict(context.status.trailing_metadata)["grpc-status-details-bin"]
    bad_request = error_details_pb2.BadRequest()
    assert status_pb2.Status.FromString(details).details[0].Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [("name", "required")]


@pytest.mark.parametrize(("error", "code", "message"), [
    (NotFound("order", "ord_1"), grpc.StatusCode.NOT_FOUND, "order 'ord_1' not found"),
    (ServerSelectionTimeoutError("db"), grpc.StatusCode.UNAVAILABLE, "the database did not answer in time; retry shortly"),
    (ValueError("secret internals"), grpc.StatusCode.INTERNAL, "internal error; it has been logged"),
])
def test_errors_map_to_a_status_without_internals(error, code, message):
    _, context = serve([interceptors.ErrorInterceptor()], raising(error))
    assert (context.code(), context.details) == (code, message)


def test_errors_let_an_abort_pass_as_it_is():
    error, context = serve([interceptors.ErrorInterceptor()],
                           lambda request, context: context.abort(grpc.StatusCode.ABORTED, "try again"))
    assert (context.code(), context.details, context.status) == (grpc.StatusCode.ABORTED, "try again", None)


@pytest.fixture(scope="module")
def keys():
    private, public = generate_keypair_pem()
    return TokenIssuer(private).issue(PRINCIPAL)[0], TokenVerifier(public)


def test_auth_sets_the_principal_for_the_call_only(keys):
    token, verifier = keys
    seen, _ = serve([interceptors.AuthInterceptor(verifier, ())], lambda request, context: current_principal(),
                    metadata=(("authorization", f"Bearer {token}"),))
    assert seen.subject == "adm_1" and interceptors.current_principal_var.get() is None


@pytest.mark.parametrize(("metadata", "public", "refusal"), [
    ((), False, "this call needs a token"),
    ((("authorization", "Basic abc"),), False, "must be 'Bearer <token>'"),
    ((("authorization", "Bearer "),), True, "must be 'Bearer <token>'"),
])
def test_auth_refuses_calls_without_a_good_token(keys, metadata, public, refusal):
    error, _ = serve([interceptors.AuthInterceptor(keys[1], [METHOD] if public else [])],
                     lambda request, context: "never", metadata=metadata)
    assert isinstance(error, Unauthenticated) and refusal in error.message


def test_auth_lets_public_methods_come_without_a_token(keys):
    answer, _ = serve([interceptors.AuthInterceptor(keys[1], [METHOD])],
                     lambda request, context: interceptors.current_principal_var.get())
    assert answer is None


class RecordingPolicy:
    def __init__(self, refuse: bool = False) -> None:
        self.refuse, self.ended = refuse, []

    def begin(self, method, principal, metadata, peer, request):
        if self.refuse:
            raise PermissionDenied("an inspector reads and changes nothing")
        return Call(method, principal, "10.1.2.3", peer, request, audited=False)

    def end(self, call, code):
        self.ended.append((call.method, call.response, code))


def test_policy_sees_the_answer_and_the_code_of_every_call():
    policy = RecordingPolicy()
    serve([interceptors.PolicyInterceptor(policy)], lambda request, context: "created ord_1")
    serve([interceptors.PolicyInterceptor(policy)], raising(NotFound("order", "ord_1")))
    assert policy.ended == [(METHOD, "created ord_1", grpc.StatusCode.OK), (METHOD, None, grpc.StatusCode.NOT_FOUND)]


def test_the_chain_maps_and_counts_refusals_before_the_handler(keys):
    before = handled("UNAUTHENTICATED"), handled("PERMISSION_DENIED")
    chain = interceptors.chain(keys[1], ())
    _, context = serve(chain, lambda request, context: pytest.fail("the handler ran"))
    assert context.code() == grpc.StatusCode.UNAUTHENTICATED
    chain[-1] = interceptors.PolicyInterceptor(RecordingPolicy(refuse=True))
    _, context = serve(chain, lambda request, context: pytest.fail("the handler ran"),
                       metadata=(("authorization", f"Bearer {keys[0]}"),))
    assert context.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (handled("UNAUTHENTICATED"), handled("PERMISSION_DENIED")) == (before[0] + 1, before[1] + 1)


def test_health_and_reflection_pass_untouched(keys):
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: "SERVING")
    for interceptor in interceptors.chain(keys[1], ()):
        assert interceptor.intercept_service(lambda _: handler, Details("/grpc.health.v1.Health/Check")) is handler
