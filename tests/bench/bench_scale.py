"""District scale: every list, queue and search RPC of ordering and registration on the district
`make seed-scale` builds (seeded here first when its data directory does not hold it complete:
once, then reused), and "placed → visible" in the busiest courtyard's queue.

Each figure is the p50/p99 of sequential calls, beside two floors measured in the same run: the
gRPC health check of the same service process, and the bare pymongo queries of the same shape —
exactly the finds the service sends for that call (captured in-process), replayed on the same
server. Budget (the issue "District scale"): p99 < 100 ms on the embedded database, 2 cores. An
RPC over budget is printed with the top entries of a profile of the same call in-process.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import io
import os
import pstats
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pymongo import MongoClient

from services.common.auth import TokenVerifier
from services.common.config import load_settings
from tests.bench.harness import BenchContext, Measurement
from tests.support.plans import captured_finds, connect_monitored
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as op
from wenming.ordering.v1 import ordering_pb2_grpc
from wenming.ordering.v1 import types_pb2
from wenming.registration.v1 import registration_pb2 as reg
from wenming.registration.v1 import registration_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "infra" / "local" / "stack.sh"
BUDGET_MS = 100.0
S = types_pb2.OrderStatus
OPEN = [S.ORDER_STATUS_PLACED, S.ORDER_STATUS_ESCALATED, S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_DISPATCHED,
        S.ORDER_STATUS_OPEN, S.ORDER_STATUS_ACCEPTED, S.ORDER_STATUS_IN_SERVICE, S.ORDER_STATUS_COMPLETED,
        S.ORDER_STATUS_HOURS_CONFIRMED, S.ORDER_STATUS_RATED, S.ORDER_STATUS_DECLINED]


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def _load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _scale_env() -> dict[str, str]:
    """The scale stack's settings (make exports them as SCALE_ENV) on top of this process's."""
    env = dict(os.environ)
    for pair in os.environ.get("SCALE_ENV", "").split():
        name, _, value = pair.partition("=")
        env[name] = value
    env.pop("MONGODB_URI", None)
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    for line in subprocess.run([str(STACK), "env"], env=env, capture_output=True, text=True, check=True).stdout.split(
            "\n"):
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = value
    return env


@dataclass
class Case:
    name: str
    service: str            # registration or ordering
    rpc: object             # stub method
    request: object
    token: str
    domain_call: object     # (domain, principal) -> the same work in-process


class Subjects:
    """Who the calls are made as: the district's busiest units and most active people."""

    def __init__(self, client: MongoClient, seed):
        self.seed = seed
        ordering, people = client["wmscale_ordering"], client["wmscale_seed"]["people"]
        open_at = {}
        for entry in ordering.order_index.find({"status": {"$in": OPEN}}, {"unit": 1}):
            open_at[entry["unit"]] = open_at.get(entry["unit"], 0) + 1
        units = seed.units
        yards = [u for u in units.values() if u.level == c.UNIT_LEVEL_COURTYARD]
        self.yard = max(yards, key=lambda u: open_at.get(u.unit_id, 0))
        self.station = units[self.yard.path[2]]
        self.institute = units[self.yard.path[1]]
        self.center = units[self.yard.path[0]]
        self.open_at_yard = open_at.get(self.yard.unit_id, 0)
        mine: dict[str, int] = {}
        for entry in ordering.order_index.find({"district_id": "liangzhou-scale"}, {"resident": 1}).limit(20000):
            mine[entry["resident"]] = mine.get(entry["resident"], 0) + 1
        self.resident = people.find_one({"_id": max(mine, key=mine.get)})
        tasks: dict[str, int] = {}
        for task in ordering.order_tasks.find({}, {"vol": 1}).limit(50000):
            tasks[task["vol"]] = tasks.get(task["vol"], 0) + 1
        self.volunteer = people.find_one({"_id": max(tasks, key=tasks.get)})
        claimable = ordering.order_index.find_one({"status": S.ORDER_STATUS_OPEN}, {"unit": 1})
        pool = seed.under.get(claimable["unit"] if claimable else self.yard.unit_id, [])
        self.claimer = pool[0] if pool else self.volunteer
        phone = client["wmscale_registration"].residents.find_one({"courtyard_id": self.yard.unit_id},
                                                                  {"phone_masked": 1})
        self.last_four = phone["phone_masked"][-4:]


def _cases(seed, subjects: Subjects, registration, ordering) -> list[Case]:
    admin = lambda unit: seed.admin(unit.unit_id)[0][1].removeprefix("Bearer ")  # noqa: E731
    resident = seed.resident_token(subjects.resident)[0][1].removeprefix("Bearer ")
    volunteer = seed.volunteer_token(subjects.volunteer)[0][1].removeprefix("Bearer ")
    claimer = seed.volunteer_token(subjects.claimer)[0][1].removeprefix("Bearer ")
    yard, station, institute, center = subjects.yard, subjects.station, subjects.institute, subjects.center
    now = dt.datetime.now(dt.UTC)
    month = op.ListActivitiesRequest(subtree=True)
    month.starts_from.FromDatetime(now - dt.timedelta(days=15))
    month.starts_before.FromDatetime(now + dt.timedelta(days=15))
    yard_month = op.ListActivitiesRequest()
    yard_month.CopyFrom(month)
    yard_month.subtree = False
    q = lambda d: d.queries  # noqa: E731
    cases = [
        ("ListUnitQueue own (busiest courtyard)", ordering.ListUnitQueue, op.ListUnitQueueRequest(), admin(yard),
         lambda d, p, r: q(d).unit_queue(p, r)),
        ("ListUnitQueue own, history (CLOSED)", ordering.ListUnitQueue,
         op.ListUnitQueueRequest(statuses=[S.ORDER_STATUS_CLOSED]), admin(yard), lambda d, p, r: q(d).unit_queue(p, r)),
        ("ListUnitQueue subtree (station)", ordering.ListUnitQueue, op.ListUnitQueueRequest(include_subtree=True),
         admin(station), lambda d, p, r: q(d).unit_queue(p, r)),
        ("ListUnitQueue subtree (institute)", ordering.ListUnitQueue, op.ListUnitQueueRequest(include_subtree=True),
         admin(institute), lambda d, p, r: q(d).unit_queue(p, r)),
        ("ListUnitQueue subtree (center)", ordering.ListUnitQueue, op.ListUnitQueueRequest(include_subtree=True),
         admin(center), lambda d, p, r: q(d).unit_queue(p, r)),
        ("ListUnitQueue subtree (center), history", ordering.ListUnitQueue, op.ListUnitQueueRequest(
            include_subtree=True, statuses=[S.ORDER_STATUS_CLOSED]), admin(center),
         lambda d, p, r: q(d).unit_queue(p, r)),
        ("ListMyOrders", ordering.ListMyOrders, op.ListMyOrdersRequest(), resident,
         lambda d, p, r: q(d).my_orders(p, r)),
        ("ListMyTasks", ordering.ListMyTasks, op.ListMyTasksRequest(), volunteer, lambda d, p, r: q(d).my_tasks(p, r)),
        ("ListClaimableOrders", ordering.ListClaimableOrders, op.ListClaimableOrdersRequest(), claimer,
         lambda d, p, r: q(d).claimable(p, r)),
        ("GetOrderStats (center)", ordering.GetOrderStats, op.GetOrderStatsRequest(), admin(center),
         lambda d, p, r: q(d).stats(p, r.unit_id)),
        ("GetOrderStats (station)", ordering.GetOrderStats, op.GetOrderStatsRequest(), admin(station),
         lambda d, p, r: q(d).stats(p, r.unit_id)),
        ("GetOrderTrends (center, 30 days)", ordering.GetOrderTrends, op.GetOrderTrendsRequest(), admin(center),
         lambda d, p, r: d.trends.trends(p, r)),
        ("GetOrderTrends (center, 12 months)", ordering.GetOrderTrends, op.GetOrderTrendsRequest(
            granularity=op.TREND_GRANULARITY_MONTH), admin(center), lambda d, p, r: d.trends.trends(p, r)),
        ("GetOrderTrends (institute, 12 months)", ordering.GetOrderTrends, op.GetOrderTrendsRequest(
            granularity=op.TREND_GRANULARITY_MONTH), admin(institute), lambda d, p, r: d.trends.trends(p, r)),
        ("ListActivities (resident)", ordering.ListActivities, op.ListActivitiesRequest(), resident,
         lambda d, p, r: d.activities.list(p, r)),
        ("ListActivities (resident, this month)", ordering.ListActivities, yard_month, resident,
         lambda d, p, r: d.activities.list(p, r)),
        ("ListActivities (center subtree, month)", ordering.ListActivities, month, admin(center),
         lambda d, p, r: d.activities.list(p, r)),
        ("SearchVolunteers (center)", registration.SearchVolunteers, reg.SearchVolunteersRequest(), admin(center),
         lambda d, p, r: d.volunteers.search(p, r)),
        ("SearchVolunteers (center, a skill)", registration.SearchVolunteers, reg.SearchVolunteersRequest(
            skill=c.SKILL_LEGAL_AID), admin(center), lambda d, p, r: d.volunteers.search(p, r)),
        ("SearchVolunteers (station, active)", registration.SearchVolunteers, reg.SearchVolunteersRequest(
            status=reg.VOLUNTEER_STATUS_ACTIVE), admin(station), lambda d, p, r: d.volunteers.search(p, r)),
        ("SearchVolunteers (courtyard)", registration.SearchVolunteers, reg.SearchVolunteersRequest(), admin(yard),
         lambda d, p, r: d.volunteers.search(p, r)),
        ("SearchResidents (center, 王)", registration.SearchResidents, reg.SearchResidentsRequest(query="王"),
         admin(center), lambda d, p, r: d.residents.search(p, r)),
        ("SearchResidents (institute, 王秀)", registration.SearchResidents, reg.SearchResidentsRequest(query="王秀"),
         admin(institute), lambda d, p, r: d.residents.search(p, r)),
        ("SearchResidents (center, last 4 digits)", registration.SearchResidents, reg.SearchResidentsRequest(
            query=subjects.last_four), admin(center), lambda d, p, r: d.residents.search(p, r)),
        ("ListSubtree (center)", registration.ListSubtree, reg.ListSubtreeRequest(), admin(center),
         lambda d, p, r: d.units.list_subtree(p, r.root_unit_id, r.level, r.page.page_size, r.page.page_token)),
        ("ListSubtree (center, courtyards)", registration.ListSubtree, reg.ListSubtreeRequest(
            level=c.UNIT_LEVEL_COURTYARD), admin(center),
         lambda d, p, r: d.units.list_subtree(p, r.root_unit_id, r.level, r.page.page_size, r.page.page_token)),
    ]
    return [Case(name, "registration" if name.startswith(("Search", "ListSubtree")) else "ordering", rpc, request,
                 token, call) for name, rpc, request, token, call in cases]


def _time(call, samples: int) -> list[float]:
    out = []
    for _ in range(samples):
        began = time.perf_counter()
        call()
        out.append((time.perf_counter() - began) * 1000)
    return out


def _profile(call, repeats: int = 3) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeats):
        call()
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(12)
    lines = [line for line in text.getvalue().splitlines() if line.strip()]
    return "\n".join(lines[-14:])


def run(ctx: BenchContext) -> list[Measurement]:
    sys.path.insert(0, str(ROOT / "infra" / "local"))
    import seed_scale

    env = _scale_env()
    data_dir = Path(env["WENMING_DATA"])
    subprocess.run([str(STACK), "start"], env=env, check=True, stdout=subprocess.DEVNULL)
    samples = 30 if ctx.quick else 100
    try:
        fraction = os.environ.get("SCALE_FRACTION", "1")
        print(f"  the scale district ({data_dir}, --fraction {fraction}): seeding what is missing…", flush=True)
        subprocess.run([sys.executable, "-m", "infra.local.seed_scale", "--fraction", fraction,
                        "--data-dir", str(data_dir)], env=env, check=True, cwd=ROOT)
        os.environ.update({k: env[k] for k in ("MONGODB_URI", "KAFKA_BOOTSTRAP_SERVERS")})
        client = MongoClient(env["MONGODB_URI"])
        stack = seed_scale.Stack(data_dir)
        stack.start(("registration", "ordering"))
        try:
            return _measure(ctx, seed_scale, stack, client, samples)
        finally:
            stack.stop()
    finally:
        subprocess.run([str(STACK), "stop"], env=env, stdout=subprocess.DEVNULL)


def _measure(ctx, seed_scale, stack, client, samples: int) -> list[Measurement]:
    seed = seed_scale.Seeder(stack, client, float(client["wmscale_seed"]["phases"].find_one({"_id": "plan"})["fraction"]))
    seed.tree()
    seed.people()
    subjects = Subjects(client, seed)
    counts = {name: client[f"wmscale_{db}"][coll].estimated_document_count() for name, (db, coll) in {
        "orders": ("ordering", "orders"), "volunteers": ("registration", "volunteers"),
        "residents": ("registration", "residents"), "activities": ("ordering", "activities")}.items()}
    print(f"  {counts}; busiest courtyard holds {subjects.open_at_yard} open orders; {_load()}", flush=True)
    channels = {name: grpc.insecure_channel(stack.target(name)) for name in ("registration", "ordering")}
    stubs = {"registration": registration_pb2_grpc.RegistrationServiceStub(channels["registration"]),
             "ordering": ordering_pb2_grpc.OrderingServiceStub(channels["ordering"])}
    health = {name: health_pb2_grpc.HealthStub(channel) for name, channel in channels.items()}
    verifier = TokenVerifier(Path(stack.secrets["JWT_PUBLIC_KEY_FILE"]).read_text())
    results = []
    cases = _cases(seed, subjects, stubs["registration"], stubs["ordering"])
    for service in ("ordering", "registration"):
        # the service's domain in this process, one service at a time (its models use mongoengine's
        # one default connection)
        app = __import__(f"services.{service}.app", fromlist=["build", "extra_settings"])
        settings = load_settings(service, environ=stack.env(service), extra=app.extra_settings)
        db = connect_monitored(settings.mongodb_uri, settings.mongodb_database)
        domain = app.build(settings, db) if service == "ordering" else app.build(settings)
        results += [_case(case, domain, db, health[service], verifier, samples) for case in cases
                    if case.service == service]
    results.append(_visible(stubs["ordering"], seed, subjects, samples=5 if ctx.quick else 20))
    for channel in channels.values():
        channel.close()
    return results


def _case(case: Case, domain, db, health, verifier: TokenVerifier, samples: int) -> Measurement:
    metadata = [("authorization", f"Bearer {case.token}")]

    def rpc():
        return case.rpc(case.request, metadata=metadata, timeout=60)

    rpc()  # warm: connections, the verifier's cache
    latencies = _time(rpc, samples)
    floor_health = _time(lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=10), samples)
    principal = verifier.verify(case.token)[0]

    def in_process():
        return case.domain_call(domain, principal, case.request)

    with captured_finds() as finds:
        in_process()
    floor_db = _time(lambda: [list(db[f.collection].find(f.filter)) for f in finds], max(10, samples // 3))
    p50, p99 = _pct(latencies, 50), _pct(latencies, 99)
    ok = p99 < BUDGET_MS
    details = {"p50_ms": round(p50, 1), "p99_ms": round(p99, 1), "samples": len(latencies),
               "health_p50_ms": round(_pct(floor_health, 50), 2), "health_p99_ms": round(_pct(floor_health, 99), 2),
               "bare_queries": len(finds), "bare_p50_ms": round(_pct(floor_db, 50), 1),
               "bare_p99_ms": round(_pct(floor_db, 99), 1), "load": _load()}
    print(f"    {case.name:<44} p50 {p50:7.1f}  p99 {p99:7.1f} ms | health p50 {details['health_p50_ms']:5.2f} "
          f"p99 {details['health_p99_ms']:5.2f} | bare {len(finds)} queries p50 {details['bare_p50_ms']:6.1f} "
          f"p99 {details['bare_p99_ms']:6.1f} ms | {_load()}", flush=True)
    if not ok:
        details["profile"] = _profile(in_process)
        print(f"  OVER BUDGET {case.name}: p99 {p99:.1f} ms; the same call in-process, profiled:\n"
              + details["profile"], flush=True)
    return Measurement(f"scale {case.name} p99", p99, "ms", "bare pymongo same queries p99", details["bare_p99_ms"],
                       "p99 < 100 ms", ok, details)


def _visible(stub, seed, subjects: Subjects, samples: int) -> Measurement:
    """An order placed by a resident of the busiest courtyard, until its admin's queue of new
    orders shows it; then cancelled, so the district stays as seeded."""
    resident = seed.resident_token(subjects.resident)
    admin = seed.admin(subjects.yard.unit_id)
    item = next(i for i in seed.menu.values() if i.handling_level == c.UNIT_LEVEL_COURTYARD
                and not i.required_certifications) if hasattr(seed, "menu") else None
    if item is None:
        items = stub.ListMenu(op.ListMenuRequest(page=c.PageRequest(page_size=100)), metadata=admin, timeout=30).items
        item = next(i for i in items if i.handling_level == c.UNIT_LEVEL_COURTYARD and not i.required_certifications)
    queue = op.ListUnitQueueRequest(statuses=[S.ORDER_STATUS_PLACED], page=c.PageRequest(page_size=100))
    out = []
    for _ in range(samples):
        began = time.perf_counter()
        placed = stub.PlaceOrder(op.PlaceOrderRequest(item_id=item.item_id), metadata=resident, timeout=30).order
        while placed.order_id not in {o.order_id for o in stub.ListUnitQueue(queue, metadata=admin, timeout=30).orders}:
            if time.perf_counter() - began > 30:
                break
        out.append((time.perf_counter() - began) * 1000)
        stub.CancelOrder(op.CancelOrderRequest(order_id=placed.order_id, reason="基准测试"), metadata=resident,
                         timeout=30)
    p95 = _pct(out, 95)
    return Measurement("scale placed → visible in the busiest queue p95", p95, "ms", budget="< 1,000 ms p95",
                       ok=p95 < 1000, details={"p50_ms": round(_pct(out, 50), 1), "samples": len(out), "load": _load()})
