"""Seeded faults under steady traffic through the real gRPC APIs, then the invariants.

Traffic: residents' orders driven 点单 → 受理 → 派单 → 接单 → 签到 → 签退 → 时长审核 through
ordering's gRPC API (the clock moved for the time on site); registration issues the tokens and the
points ledger turns every confirmation into hours and points. A failed call is counted and the
order is picked up again from the state GetOrder shows.

Invariants, after the traffic stopped and the system settled:
- every committed order has its OrderPlaced event on the topic, every confirmed order its
  OrderHoursConfirmed event, and no outbox is left pending;
- every volunteer's verified minutes in the ledger are exactly the sum of the confirmed hours on the
  topic (each confirmation once: nothing lost, nothing doubled);
- every account's balances equal the sum of its entries, and none is negative.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from kafka import KafkaConsumer
from pymongo.errors import PyMongoError

from services.common.auth import TokenIssuer
from services.common.events import PoisonEvent, decode, events_topic
from services.common.kafka_clients import TopicSettings, ensure_topics, make_admin
from tests.ordering.support import Clock, Ordering, World
from tests.support.registration import District
from tests.support.stack import Stack
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2 as types
from wenming.points.v1 import points_pb2

S = types
RPC_TIMEOUT = 5
ORDER_GIVE_UP_SECONDS = 240  # an order that cannot advance for this long counts as stuck
SETTLE_SECONDS = 180


@dataclass
class Fault:
    name: str
    seconds: float  # how long the fault lasts (0: an instant kill and restart)

    def describe(self) -> str:
        return f"{self.name} {self.seconds:.0f}s" if self.seconds else self.name


def pick_faults(rng: random.Random, names: list[str]) -> list[Fault]:
    """The faults of a run, their durations drawn from the seed (ranges of issue 13)."""
    ranges = {"broker-down": (10, 120), "broker-frozen": (30, 60), "database-down": (10, 60),
              "kill-points": (0, 0), "kill-ordering": (0, 0)}
    return [Fault(name, rng.uniform(*ranges[name])) for name in names]


FAULTS = ["broker-down", "broker-frozen", "database-down", "kill-points", "kill-ordering"]


@dataclass
class Outcome:
    fault: Fault
    orders: int = 0
    confirmed: int = 0
    failed_rpcs: int = 0
    stuck_orders: int = 0      # could not be moved on for ORDER_GIVE_UP_SECONDS
    off_path: int = 0          # left the path driven here (escalated by its deadline): not counted further
    missing_events: int = 0
    pending_outboxes: int = 0
    hours_wrong: int = 0       # volunteers whose ledger minutes differ from the confirmed hours
    balances_wrong: int = 0    # accounts whose balances differ from their entries
    negative: int = 0
    recovered_seconds: float = float("nan")
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.stuck_orders or self.missing_events or self.pending_outboxes or self.hours_wrong
                    or self.balances_wrong or self.negative)

    def line(self) -> str:
        return (f"chaos {self.fault.describe():<22} orders={self.orders} confirmed={self.confirmed} "
                f"failed_rpcs={self.failed_rpcs} stuck={self.stuck_orders} off_path={self.off_path} missing_events={self.missing_events} "
                f"pending_outboxes={self.pending_outboxes} hours_wrong={self.hours_wrong} "
                f"balances_wrong={self.balances_wrong} negative={self.negative} "
                f"recovered_in={self.recovered_seconds:.0f}s {'OK' if self.ok else 'FAIL'}")


class Harness:
    """registration, ordering and points on the stack's broker and database, a fresh district."""

    def __init__(self, stack: Stack, seed: int, mongo_client, port_offset: int = 0):
        self.stack = stack
        self.rng = random.Random(seed)
        self.mongo = mongo_client
        self.prefix = f"{stack.db_prefix}chaos{seed}_"
        self.clock = Clock(stack.data_dir / f"chaos-clock-{stack.run_id}")
        admin = make_admin(stack.kafka, "chaos")
        ensure_topics(admin, [events_topic("training")], TopicSettings(partitions=3))  # ordering consumes it
        admin.close()
        common = {"database_prefix": self.prefix, "port_offset": port_offset}
        self.registration = self.ordering = self.points = None
        try:
            self._start_world(common)
        except BaseException:
            self._stop_services()  # what started before the failure does not outlive it
            raise
        self._lock = threading.Lock()
        self._clock_lock = threading.Lock()

    def _start_world(self, common: dict) -> None:
        self.registration = self._start("registration", {"ACCESS_TOKEN_TTL_SECONDS": "7200",
                                                         "LOGIN_MAX_FAILURES_PER_ADDRESS": "100000"}, **common)
        self.ordering = self._start("ordering", {"CLOCK_OFFSET_FILE": str(self.clock.path)}, **common)
        self.points = self._start("points", {"POINTS_LEDGER_BATCH_RECORDS": "20"}, **common)
        self.ordering_db = self.mongo[f"{self.prefix}ordering"]
        self.points_db = self.mongo[f"{self.prefix}points"]
        self.district = District(self.registration.grpc_target, self.registration.env)
        issuer = TokenIssuer(Path(self.stack.secrets["JWT_PRIVATE_KEY_FILE"]).read_text())
        self.client = Ordering(self.ordering.grpc_target, self.ordering_db)
        self.world = World(self.district, self.client, issuer)
        self.crews = []  # (courtyard, resident token, volunteers)
        for yard in self.world.courtyards:
            resident_id, token = self.world.resident(yard)
            self.world.wait_resident_known(resident_id)
            self.crews.append((yard, token, self.world.volunteers(yard, 2)))

    def _start(self, name: str, env: dict[str, str], **options):
        return self.stack.start_service(name, extra_env=env, log_name=f"chaos-{name}", **options)

    def close(self) -> None:
        self.client.close()
        self.district.close()
        self._stop_services()
        self.clock.path.unlink(missing_ok=True)

    def _stop_services(self) -> None:
        for proc in (self.points, self.ordering, self.registration):
            if proc is not None:
                proc.stop()

    # ---- traffic ----

    def run_fault(self, fault: Fault, workers: int = 3, before: float = 10, after: float = 30) -> Outcome:
        outcome = Outcome(fault)
        stopping = threading.Event()
        confirmations: list[float] = []
        threads = [threading.Thread(target=self._drive_orders, args=(stopping, outcome, confirmations), daemon=True)
                   for _ in range(workers)]
        for thread in threads:
            thread.start()
        time.sleep(before)
        self._inject(fault)
        ended = time.monotonic()
        time.sleep(after)
        stopping.set()
        for thread in threads:
            thread.join(ORDER_GIVE_UP_SECONDS + 30)
        after_fault = [t for t in confirmations if t > ended]
        outcome.recovered_seconds = (min(after_fault) - ended) if after_fault else float("nan")
        self._check(outcome)
        return outcome

    def _drive_orders(self, stopping: threading.Event, outcome: Outcome, confirmations: list[float]) -> None:
        rng = random.Random(self.rng.random())
        while not stopping.is_set():
            yard, resident, volunteers = self.crews[rng.randrange(len(self.crews))]
            volunteer = rng.choice(volunteers)
            order = self._call(outcome, lambda token=resident: self.world.place(token))
            if order is None:
                time.sleep(1)
                continue
            with self._lock:
                outcome.orders += 1
            status = self._serve(order, volunteer, outcome, rng)
            with self._lock:
                if status == S.ORDER_STATUS_HOURS_CONFIRMED:
                    confirmations.append(time.monotonic())
                    outcome.confirmed += 1
                elif status is None:
                    outcome.stuck_orders += 1
                else:
                    outcome.off_path += 1

    def _serve(self, order, volunteer, outcome: Outcome, rng: random.Random) -> int | None:
        """Moves `order` to HOURS_CONFIRMED, one step per its current status. Returns the status it
        ended in (HOURS_CONFIRMED, or one off the driven path), None when it got stuck."""
        w = self.world
        holder = w.holder(order)
        steps = {
            S.ORDER_STATUS_PLACED: lambda: w.stub.AcknowledgeOrder(
                pb.AcknowledgeOrderRequest(order_id=order.order_id), metadata=holder, timeout=RPC_TIMEOUT),
            S.ORDER_STATUS_ACKNOWLEDGED: lambda: w.stub.DispatchOrder(
                pb.DispatchOrderRequest(order_id=order.order_id, volunteer_ids=[volunteer.id]), metadata=holder,
                timeout=RPC_TIMEOUT),
            S.ORDER_STATUS_DISPATCHED: lambda: w.stub.AcceptOrder(
                pb.AcceptOrderRequest(order_id=order.order_id), metadata=volunteer.token, timeout=RPC_TIMEOUT),
            S.ORDER_STATUS_ACCEPTED: lambda: w.stub.CheckInOrder(
                pb.CheckInOrderRequest(order_id=order.order_id, code=w.code(order)), metadata=volunteer.token,
                timeout=RPC_TIMEOUT),
            S.ORDER_STATUS_IN_SERVICE: lambda: self._check_out(order, volunteer, rng),
            S.ORDER_STATUS_COMPLETED: lambda: w.stub.ConfirmOrderHours(
                pb.ConfirmOrderHoursRequest(order_id=order.order_id), metadata=holder, timeout=RPC_TIMEOUT),
        }
        status = order.status
        give_up = time.monotonic() + ORDER_GIVE_UP_SECONDS
        while status in steps:
            if time.monotonic() > give_up:
                return None
            if self._call(outcome, steps[status]) is None:
                time.sleep(1)
            current = self._call(outcome, lambda: w.get(order.order_id))
            if current is not None:
                status = current.status
        return status

    def _check_out(self, order, volunteer, rng: random.Random):
        with self._clock_lock:  # the time on site, by ordering's clock
            self.clock.advance(rng.randint(20, 60) * 60)
        return self.world.stub.CheckOutOrder(pb.CheckOutOrderRequest(
            order_id=order.order_id, code=self.world.code(order), report="已为老人理发，老人很满意"),
            metadata=volunteer.token, timeout=RPC_TIMEOUT)

    def _call(self, outcome: Outcome, call):
        try:
            return call()
        except grpc.RpcError:
            with self._lock:
                outcome.failed_rpcs += 1
            return None

    # ---- faults ----

    def _inject(self, fault: Fault) -> None:
        if fault.name == "broker-down":
            self.stack.control("kill", "kafka")
            time.sleep(fault.seconds)
            self.stack.control("start", "kafka")
        elif fault.name == "broker-frozen":
            pid = int((self.stack.data_dir / "run" / "kafka.pid").read_text())
            os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(fault.seconds)
            finally:
                os.kill(pid, signal.SIGCONT)
        elif fault.name == "database-down":
            self.stack.control("kill", "ferretdb")
            time.sleep(fault.seconds)
            self.stack.control("start", "ferretdb")
        elif fault.name in ("kill-points", "kill-ordering"):
            proc = self.points if fault.name == "kill-points" else self.ordering
            proc.kill()  # SIGKILL: no graceful end of the batch or the calls in flight
            proc.start()
            proc.wait_serving(120)
        else:
            raise ValueError(f"unknown fault {fault.name}")

    # ---- invariants ----

    def _check(self, outcome: Outcome) -> None:
        district = self.district.id
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            try:
                placed, confirmed_minutes = self._topic()
                self._compare(outcome, district, placed, confirmed_minutes)
                if outcome.ok:
                    return
            except (grpc.RpcError, PyMongoError) as exc:  # still coming back
                outcome.problems.append(f"{type(exc).__name__}: {exc}"[:200])
            if time.monotonic() > deadline:
                return
            time.sleep(5)

    def _compare(self, outcome: Outcome, district: str, placed: set[str],
                 confirmed_minutes: dict[str, dict[str, int]]) -> None:
        orders = list(self.ordering_db.orders.find({"district_id": district}, {"outbox_pending": 1}))
        outcome.pending_outboxes = sum(1 for o in orders if o.get("outbox_pending"))
        confirmed_ids = {o.order_id for o in self._confirmed_orders()}
        outcome.missing_events = (len({o["_id"] for o in orders} - placed)
                                  + len(confirmed_ids - set(confirmed_minutes)))
        expected: Counter = Counter()
        for hours in confirmed_minutes.values():
            expected.update(hours)
        entries: dict[tuple[str, int], int] = defaultdict(int)
        for entry in self.points_db.ledger_entries.find({"district_id": district}, {"account_id": 1, "book": 1,
                                                                                     "amount": 1}):
            entries[(entry["account_id"], entry["book"])] += entry["amount"]
        minutes = {a: v for (a, book), v in entries.items() if book == points_pb2.BOOK_VERIFIED_MINUTES}
        outcome.hours_wrong = sum(1 for v in set(expected) | set(minutes) if expected[v] != minutes.get(v, 0))
        accounts = list(self.points_db.accounts.find({"district_id": district}))
        outcome.balances_wrong = sum(
            1 for a in accounts
            if a.get("verified_minutes", 0) != entries.get((a["_id"], points_pb2.BOOK_VERIFIED_MINUTES), 0)
            or a.get("points", 0) != entries.get((a["_id"], points_pb2.BOOK_POINTS), 0))
        outcome.negative = sum(1 for a in accounts if a.get("points", 0) < 0 or a.get("verified_minutes", 0) < 0)

    def _confirmed_orders(self) -> list:
        """The district's orders ordering holds as confirmed, asked through its API."""
        found = []
        for order in self.ordering_db.orders.find({"district_id": self.district.id}, {"_id": 1}):
            reply = self.world.get(order["_id"])
            if reply.status == S.ORDER_STATUS_HOURS_CONFIRMED:
                found.append(reply)
        return found

    def _topic(self) -> tuple[set[str], dict[str, dict[str, int]]]:
        """Ordering's events of this district: the orders placed, and each confirmed order's hours
        (the first copy of its confirmation; later copies are duplicates consumers drop)."""
        consumer = KafkaConsumer(events_topic("ordering"), bootstrap_servers=self.stack.kafka.split(","),
                                 group_id=None, auto_offset_reset="earliest", consumer_timeout_ms=5000,
                                 client_id=f"chaos-{uuid.uuid4().hex[:6]}")
        placed: set[str] = set()
        confirmed: dict[str, dict[str, int]] = {}
        try:
            for record in consumer:
                try:
                    envelope, payload = decode(record.value)
                except PoisonEvent:  # not ours to judge here
                    continue
                if envelope.district_id != self.district.id:
                    continue
                kind = envelope.event_type.rsplit(".", 1)[-1]
                if kind == "OrderPlaced":
                    placed.add(envelope.aggregate_id)
                elif kind == "OrderHoursConfirmed" and envelope.aggregate_id not in confirmed:
                    confirmed[envelope.aggregate_id] = {h.volunteer_id: h.minutes for h in payload.hours}
        finally:
            consumer.close()
        return placed, confirmed
