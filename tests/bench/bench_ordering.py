"""Ordering: PlaceOrder throughput and latency beside the bare gRPC echo floor and a bare insert
of the same document, and "placed → visible in the dispatcher's queue" right after the load.
The queues, lists and dashboard at district scale (100k orders) are bench_scale's.

Budgets (docs/design.md §5): PlaceOrder ≥ 300 orders/s, and p99 < 50 ms at a steady 100 orders/s;
placed → visible < 1 s p95.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import grpc
from pymongo import MongoClient

from services.common.auth import Principal, TokenIssuer
from tests.bench.harness import BenchContext, Measurement, Profile, closed_loop, paced
from tests.support.registration import District
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import ordering_pb2_grpc
from wenming.ordering.v1 import types_pb2
from services.common.events import events_topic

S = types_pb2.OrderStatus
STEADY_RATE = 100  # orders/s at which PlaceOrder's p99 is held to its budget


def place_caller(target: str, tokens: list[str], item_id: str):
    stub = ordering_pb2_grpc.OrderingServiceStub(grpc.insecure_channel(target))
    request = pb.PlaceOrderRequest(item_id=item_id, note="老人行动不便，需要上门理发")
    metadata = [("authorization", f"Bearer {random.choice(tokens)}")]
    return lambda: stub.PlaceOrder(request, metadata=metadata, timeout=10)


def insert_caller(uri: str, database: str, template: dict):
    """The database floor of PlaceOrder: a bare insert of the same order document (with its
    pending event) into the same collection, indexes and all."""
    import itertools
    import uuid

    collection = MongoClient(uri)[database]["orders"]
    prefix = uuid.uuid4().hex[:8]
    numbers = itertools.count()
    return lambda: collection.insert_one({**template, "_id": f"ord_floor_{prefix}_{next(numbers)}"})


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _visible(stub, place, queue, admin, samples: int, budget: float) -> tuple[list[float], str]:
    """Milliseconds from PlaceOrder until the order shows in the courtyard's queue of new orders,
    and the error that stopped the measurement, if any."""
    out: list[float] = []
    deadline = time.monotonic() + budget
    try:
        while len(out) < samples and time.monotonic() < deadline:
            began = time.perf_counter()
            order_id = place().order.order_id
            while time.monotonic() < deadline:
                left = max(1.0, deadline - time.monotonic())
                if order_id in {o.order_id for o in stub.ListUnitQueue(queue, metadata=admin, timeout=left).orders}:
                    out.append((time.perf_counter() - began) * 1000)
                    break
    except grpc.RpcError as error:
        return out, f"{error.code().name}: {error.details()}"
    return out, "" if out else f"not visible within {budget:.0f} s"


def run(ctx: BenchContext) -> list[Measurement]:
    samples, budget = (3, 120.0) if ctx.quick else (10, 400.0)
    registration = ctx.service("registration", port_offset=2)
    district = District(registration.grpc_target, registration.env)
    tree = district.small_tree()
    yard = tree.courtyards[0]
    center = district.as_center()
    issuer = TokenIssuer(Path(ctx.stack.secrets["JWT_PRIVATE_KEY_FILE"]).read_text())
    residents = [issuer.issue(Principal(subject=f"res_bench_caller{i:02d}", district_id=district.id,
                                        role=c.ROLE_RESIDENT, unit_id=yard.unit_id, unit_level=yard.level,
                                        unit_path=tuple(yard.path), unit_name=yard.name))[0] for i in range(16)]
    # the load fills courtyard 0's queue; placed → visible is watched at its neighbour, whose
    # dispatcher sees a normal queue
    quiet = tree.courtyards[1]
    quiet_admin = [("authorization", f"Bearer {tree.admins[quiet.unit_id]}")]
    quiet_resident = [("authorization", "Bearer " + issuer.issue(Principal(
        subject="res_bench_quiet", district_id=district.id, role=c.ROLE_RESIDENT, unit_id=quiet.unit_id,
        unit_level=quiet.level, unit_path=tuple(quiet.path), unit_name=quiet.name))[0])]
    quiet_orders = pb.ListUnitQueueRequest(unit_id=quiet.unit_id, statuses=[S.ORDER_STATUS_PLACED],
                                           page=c.PageRequest(page_size=100))
    client = MongoClient(ctx.stack.mongodb_uri, socketTimeoutMS=int(max(budget, 300) * 1000))
    env = {"SCHEDULER_INTERVAL_SECONDS": "10", "GRPC_PROCESSES": "2"}

    def publish(stub) -> pb.MenuItem:
        return stub.PublishMenuItem(pb.PublishMenuItemRequest(
            name="助老理发", category=c.SERVICE_CATEGORY_CARE_FOR_OTHERS, handling_level=c.UNIT_LEVEL_COURTYARD,
            required_skills=[c.SKILL_HAIRCUT], expected_minutes=45), metadata=center, timeout=10).item

    # ---- 1: PlaceOrder under closed-loop load, on a fresh database ----
    print(f"  PlaceOrder under load for {ctx.seconds:.0f} s, beside the bare gRPC echo…", flush=True)
    ordering = ctx.service("ordering", port_offset=2, extra_env=env)
    channel = grpc.insecure_channel(ordering.grpc_target)
    stub = ordering_pb2_grpc.OrderingServiceStub(channel)
    item = publish(stub)
    echo = ctx.floor("grpc_echo")
    profile = Profile(ordering.process.pid, ctx.seconds + 3)
    place = closed_loop("tests.bench.bench_ordering:place_caller", (ordering.grpc_target, residents, item.item_id),
                        seconds=ctx.seconds)
    print(f"  PlaceOrder at a steady {STEADY_RATE} orders/s for {ctx.seconds:.0f} s…", flush=True)
    steady = paced("tests.bench.bench_ordering:place_caller", (ordering.grpc_target, residents, item.item_id),
                   rate=STEADY_RATE, seconds=ctx.seconds)
    db = client[ordering.env["MONGODB_DATABASE"]]
    placed_total = db.orders.count_documents({})
    backlog = db.orders.count_documents({"outbox_pending": True})
    print(f"  {placed_total:,} orders placed; watching the outbox drain for 30 s…", flush=True)
    time.sleep(30)
    backlog_later = db.orders.count_documents({"outbox_pending": True})
    request = pb.PlaceOrderRequest(item_id=item.item_id)
    visible_small, small_error = _visible(stub, lambda: stub.PlaceOrder(request, metadata=quiet_resident,
                                                                        timeout=budget),
                                          quiet_orders, quiet_admin, samples, budget)
    template = db.orders.find_one({"district_id": district.id}, {"_id": 0, "outbox": 0})
    channel.close()
    ordering.stop()
    print("  the database floor: bare inserts of the same document, same callers…", flush=True)
    with_event = {**template, "outbox": [{"topic": events_topic("ordering"), "key": "k", "value": b"x" * 600}],
                  "outbox_pending": True}
    insert_floor = closed_loop("tests.bench.bench_ordering:insert_caller",
                               (ctx.stack.mongodb_uri, ordering.env["MONGODB_DATABASE"], with_event),
                               seconds=ctx.seconds)

    client.close()
    district.close()

    load = place.summary()
    return [
        Measurement("ordering PlaceOrder throughput", place.per_second, "orders/s", "bare gRPC echo",
                    echo.per_second, "≥ 300/s", place.per_second >= 300 and place.errors == 0,
                    {"load": load, "floor": echo.summary(), "orders_in_collection": placed_total,
                     "outbox_backlog_after_load": backlog, "outbox_backlog_30s_later": backlog_later,
                     "profile": profile.top()}),
        Measurement(f"ordering PlaceOrder p99 at {STEADY_RATE}/s", steady.percentile(99), "ms",
                    "bare pymongo insert p99", insert_floor.percentile(99), "< 50 ms",
                    steady.percentile(99) < 50 and steady.errors == 0
                    and steady.calls >= 0.95 * STEADY_RATE * ctx.seconds, {"load": steady.summary()}),
        Measurement("ordering PlaceOrder throughput vs the database", place.per_second, "orders/s",
                    "bare pymongo insert", insert_floor.per_second, details={"floor": insert_floor.summary()}),
        Measurement("ordering PlaceOrder p50", place.percentile(50), "ms", "bare gRPC echo p50", echo.percentile(50),
                    details={"load": load}),
        Measurement("ordering PlaceOrder p50 vs the database", place.percentile(50), "ms", "bare pymongo insert p50",
                    insert_floor.percentile(50)),
        Measurement("ordering PlaceOrder p99 flat out", place.percentile(99), "ms", "bare gRPC echo p99",
                    echo.percentile(99), details={"load": load}),
        Measurement(f"ordering placed → visible p95 ({placed_total:,} orders)", _pct(visible_small, 95), "ms",
                    budget="< 1,000 ms p95", ok=bool(visible_small) and _pct(visible_small, 95) < 1000,
                    details={"samples": len(visible_small), "p50_ms": _pct(visible_small, 50),
                             "error": small_error}),
    ]
