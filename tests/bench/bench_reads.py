"""Authenticated cheap reads, one per service, beside the bare gRPC echo floor: what the kit costs
around a call whose own work is tiny (a token, one small document). Budget: ≥ 0.5× the floor.

Each service runs as `make run` and the chart run it (GRPC_PROCESSES: 2, notification aside),
and is sampled with py-spy while it is loaded, so a figure over budget prints where the time went.
"""

from __future__ import annotations

from tests.bench.harness import BenchContext, Measurement, Profile, closed_loop
from tests.support.registration import District

BUDGET = 0.5
PROCESSES = {"GRPC_PROCESSES": "2"}


def read_caller(target: str, token: str, read: str, argument: str):
    """One of the reads below, on a channel of its own (its own connection: with several gRPC
    processes the kernel spreads connections over them)."""
    import grpc

    from wenming.media.v1 import media_pb2, media_pb2_grpc
    from wenming.ordering.v1 import ordering_pb2, ordering_pb2_grpc
    from wenming.points.v1 import points_pb2, points_pb2_grpc
    from wenming.registration.v1 import registration_pb2, registration_pb2_grpc
    from wenming.training.v1 import training_pb2, training_pb2_grpc

    channel = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
    metadata = [("authorization", f"Bearer {token}")]
    call, request = {
        "GetUnit": (registration_pb2_grpc.RegistrationServiceStub(channel).GetUnit,
                    registration_pb2.GetUnitRequest(unit_id=argument)),
        "GetOrderPolicy": (ordering_pb2_grpc.OrderingServiceStub(channel).GetOrderPolicy,
                           ordering_pb2.GetOrderPolicyRequest()),
        "GetPointRules": (points_pb2_grpc.PointsServiceStub(channel).GetPointRules, points_pb2.GetPointRulesRequest()),
        "GetRotationPolicy": (training_pb2_grpc.TrainingServiceStub(channel).GetRotationPolicy,
                              training_pb2.GetRotationPolicyRequest()),
        "GetScreeningPolicy": (media_pb2_grpc.MediaServiceStub(channel).GetScreeningPolicy,
                               media_pb2.GetScreeningPolicyRequest()),
    }[read]
    return lambda: call(request, metadata=metadata, timeout=5)


def _set_rotation_policy(target: str, token: str) -> None:
    """GetRotationPolicy answers FAILED_PRECONDITION until the center set one."""
    import grpc

    from wenming.training.v1 import training_pb2, training_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        training_pb2_grpc.TrainingServiceStub(channel).SetRotationPolicy(training_pb2.SetRotationPolicyRequest(
            general_cycle_years=3, core_cycle_years=1, notice_days=30, effective_from="2026-01-01"),
            metadata=[("authorization", f"Bearer {token}")], timeout=10)


def run(ctx: BenchContext) -> list[Measurement]:
    registration = ctx.service("registration", port_offset=1, extra_env=PROCESSES)
    district = District(registration.grpc_target, registration.env)
    token = district.center_admin_token
    echo = ctx.floor("grpc_echo")
    out = []
    for service, read in (("registration", "GetUnit"), ("ordering", "GetOrderPolicy"), ("points", "GetPointRules"),
                          ("training", "GetRotationPolicy"), ("media", "GetScreeningPolicy")):
        proc = registration if service == "registration" else ctx.service(service, port_offset=1, extra_env=PROCESSES)
        if read == "GetRotationPolicy":
            _set_rotation_policy(proc.grpc_target, token)
        print(f"  {service} {read} under load for {ctx.seconds:.0f} s…", flush=True)
        profile = Profile(proc.process.pid, ctx.seconds + 3)
        load = closed_loop("tests.bench.bench_reads:read_caller", (proc.grpc_target, token, read, district.center_id),
                           seconds=ctx.seconds)
        ok = load.per_second >= BUDGET * echo.per_second and load.errors == 0
        out.append(Measurement(f"{service} {read} (cheap read)", load.per_second, "calls/s", "bare gRPC echo",
                               echo.per_second, f"≥ {BUDGET}× floor", ok,
                               {"load": load.summary(), "floor": echo.summary(), "profile": profile.top()}))
        if proc is not registration:
            proc.stop()
    district.close()
    registration.stop()  # its ports are the next bench's
    return out
