"""Registration: a trivial RPC (VerifyToken: no database) and a read (GetUnit) per second,
beside the bare gRPC echo floor. Budget (docs/design.md §5): a trivial RPC ≥ 3,000/s per service."""

from __future__ import annotations

from tests.bench.harness import BenchContext, Measurement, closed_loop
from tests.support.registration import District


def verify_caller(target: str, token: str):
    import grpc

    from wenming.registration.v1 import registration_pb2 as reg
    from wenming.registration.v1 import registration_pb2_grpc as reg_grpc

    stub = reg_grpc.RegistrationServiceStub(grpc.insecure_channel(target))
    request = reg.VerifyTokenRequest(access_token=token)
    return lambda: stub.VerifyToken(request, timeout=5)


def get_unit_caller(target: str, token: str, unit_id: str):
    import grpc

    from wenming.registration.v1 import registration_pb2 as reg
    from wenming.registration.v1 import registration_pb2_grpc as reg_grpc

    stub = reg_grpc.RegistrationServiceStub(grpc.insecure_channel(target))
    request = reg.GetUnitRequest(unit_id=unit_id)
    metadata = [("authorization", f"Bearer {token}")]
    return lambda: stub.GetUnit(request, metadata=metadata, timeout=5)


def run(ctx: BenchContext) -> list[Measurement]:
    proc = ctx.service("registration", port_offset=2)
    district = District(proc.grpc_target, proc.env)
    echo = ctx.floor("grpc_echo")
    token = district.center_admin_token
    trivial = closed_loop("tests.bench.bench_registration:verify_caller", (proc.grpc_target, token),
                          seconds=ctx.seconds)
    read = closed_loop("tests.bench.bench_registration:get_unit_caller",
                       (proc.grpc_target, token, district.center_id), seconds=ctx.seconds)
    district.close()
    return [
        Measurement("registration VerifyToken (trivial RPC)", trivial.per_second, "calls/s", "bare gRPC echo",
                    echo.per_second, "≥ 3,000/s", trivial.per_second >= 3000 and trivial.errors == 0,
                    {"load": trivial.summary(), "floor": echo.summary()}),
        Measurement("registration VerifyToken p99", trivial.percentile(99), "ms", "bare gRPC echo p99",
                    echo.percentile(99), details={"load": trivial.summary()}),
        Measurement("registration GetUnit (one database read)", read.per_second, "calls/s", "bare gRPC echo",
                    echo.per_second, details={"load": read.summary()}),
    ]
