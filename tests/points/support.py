"""Helpers for the points tests: contract events published to the real topics exactly as the
ordering and training services will publish them, tokens, and waiting."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc

from services.common.auth import Principal, TokenIssuer
from services.common.events import EventSource, events_topic, record_headers
from services.common.kafka_clients import TopicSettings, ensure_topics, make_admin, make_producer
from tests.ordering.support import Clock, Ordering, World
from tests.support.grpc_helpers import bearer, or_not_found
from tests.support.registration import District
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import events_pb2 as ordering
from wenming.ordering.v1 import types_pb2 as ordering_types
from wenming.points.v1 import points_pb2, points_pb2_grpc
from wenming.training.v1 import events_pb2 as training

ORDERING_TOPIC = events_topic("ordering")
TRAINING_TOPIC = events_topic("training")
POINTS_TOPIC = events_topic("points")


def account_known(stub, account_id: str, metadata) -> bool:
    """Points has opened the account (it learns volunteers from registration's events)."""
    return or_not_found(lambda: stub.GetAccount(points_pb2.GetAccountRequest(account_id=account_id),
                                                metadata=metadata, timeout=5)) is not None


@contextmanager
def ordering_world(stack, registration, clock: Clock, mongo_client, name: str) -> Iterator[World]:
    """An ordering process of a test module's own on `clock` (moved to serve orders and end
    activities), and a district built through registration; for the points tests that need the
    loop's real events."""
    proc = stack.service("ordering", port_offset=3, log_name=f"ordering-for-{name}",
                         extra_env={"CLOCK_OFFSET_FILE": str(clock.path)})
    proc.start()
    try:
        proc.wait_serving(90)
        ordering = Ordering(proc.grpc_target, mongo_client[f"{stack.db_prefix}ordering"])
        district = District(registration.grpc_target, registration.env)
        yield World(district, ordering, TokenIssuer(Path(stack.secrets["JWT_PRIVATE_KEY_FILE"]).read_text()))
        district.close()
        ordering.close()
    finally:
        proc.stop()


@contextmanager
def own_clock(stack, name: str) -> Iterator[Clock]:
    """A clock file of a test module's own (ordering_world's processes read it)."""
    clock = Clock(stack.data_dir / f"{name}-clock-{stack.run_id}")
    yield clock
    clock.path.unlink(missing_ok=True)


def ref(unit) -> c.UnitRef:
    """A registration Unit as events carry it."""
    return c.UnitRef(unit_id=unit.unit_id, level=unit.level, name=unit.name, path=list(unit.path))


def ts(value: dt.datetime):
    from services.common.events import to_timestamp
    return to_timestamp(value)


class Feed:
    """Publishes ordering's and training's contract events with a real idempotent producer."""

    def __init__(self, kafka: str):
        admin = make_admin(kafka, "points-test-feed")
        try:
            # as the owners create them on start (6 partitions)
            ensure_topics(admin, [ORDERING_TOPIC, TRAINING_TOPIC], TopicSettings())
        finally:
            admin.close()
        self.producer = make_producer(kafka, "points-test-feed")
        self.ordering = EventSource("ordering")
        self.training = EventSource("training")

    def send(self, *entries: dict) -> None:
        for entry in entries:
            self.producer.send(entry["topic"], key=entry["key"].encode(), value=bytes(entry["value"]),
                               headers=record_headers(entry))
        self.producer.flush(30)

    def send_raw(self, topic: str, value: bytes, key: bytes = b"raw") -> None:
        self.producer.send(topic, key=key, value=value)
        self.producer.flush(30)

    def close(self) -> None:
        self.producer.close(5)

    # ---- ordering ----

    def order(self, order_id: str, *, courtyard, handling=None, category=c.SERVICE_CATEGORY_LECTURE_THEORY,
              item_name="理论宣讲进小院", status=ordering_types.ORDER_STATUS_PLACED, volunteers=(), resident_id="",
              placed_at: dt.datetime | None = None, completed_at: dt.datetime | None = None,
              rating: int = 0) -> ordering_types.OrderSnapshot:
        snapshot = ordering_types.OrderSnapshot(
            order_id=order_id, item_id="item_demo", item_name=item_name, category=category, status=status,
            origin_courtyard=ref(courtyard), current_unit=ref(handling or courtyard), resident_id=resident_id,
            volunteer_ids=list(volunteers), rating=rating)
        if placed_at:
            snapshot.placed_at.CopyFrom(ts(placed_at))
        if completed_at:
            snapshot.completed_at.CopyFrom(ts(completed_at))
        return snapshot

    def order_event(self, payload, district_id: str, version: int, occurred_at: dt.datetime | None = None) -> dict:
        return self.ordering.new(payload, district_id=district_id, aggregate_type="order",
                                 aggregate_id=payload.order.order_id, version=version, occurred_at=occurred_at)

    def hours_confirmed(self, district_id: str, snapshot, hours: list[tuple[str, int, int]], recorded_by,
                        version: int = 9, occurred_at: dt.datetime | None = None) -> dict:
        """hours: (volunteer id, minutes, HoursSource)."""
        payload = ordering.OrderHoursConfirmed(
            order=snapshot, recorded_by=ref(recorded_by) if not isinstance(recorded_by, c.UnitRef) else recorded_by,
            hours=[c.VolunteerHours(volunteer_id=v, minutes=m, source=s) for v, m, s in hours])
        return self.order_event(payload, district_id, version, occurred_at)

    def verified_hours(self, district_id: str, volunteer_id: str, hours: int, *, courtyard, station) -> None:
        """`hours` of verified service for a volunteer, as orders of at most 20 hours each (the
        contract refuses a day or more in one confirmation)."""
        minutes, events = hours * 60, []
        while minutes > 0:
            shift = min(minutes, 1200)
            order = self.order(f"ord_{uuid.uuid4().hex[:12]}", courtyard=courtyard, handling=station)
            events.append(self.hours_confirmed(district_id, order, [(volunteer_id, shift, c.HOURS_SOURCE_VERIFIED)],
                                               station))
            minutes -= shift
        self.send(*events)

    def activity(self, activity_id: str, unit, *, starts_at: dt.datetime, title="小院讲堂",
                 category=c.SERVICE_CATEGORY_LECTURE_POLICY,
                 status=ordering_types.ACTIVITY_STATUS_COMPLETED) -> ordering_types.ActivitySnapshot:
        snapshot = ordering_types.ActivitySnapshot(activity_id=activity_id, title=title, category=category,
                                                   unit=ref(unit), status=status)
        snapshot.starts_at.CopyFrom(ts(starts_at))
        snapshot.ends_at.CopyFrom(ts(starts_at + dt.timedelta(hours=2)))
        return snapshot

    def activity_event(self, payload, district_id: str, version: int) -> dict:
        return self.ordering.new(payload, district_id=district_id, aggregate_type="activity",
                                 aggregate_id=payload.activity.activity_id, version=version)

    def training_hours(self, district_id: str, session_id: str, volunteer_id: str, minutes: int, recorded_by) -> dict:
        payload = training.TrainingHoursCredited(session_id=session_id, course_id="course_first_aid",
                                                 volunteer_id=volunteer_id, minutes=minutes,
                                                 recorded_by=ref(recorded_by))
        return self.training.new(payload, district_id=district_id, aggregate_type="session",
                                 aggregate_id=session_id, version=3)


def points_stub(target: str) -> points_pb2_grpc.PointsServiceStub:
    return points_pb2_grpc.PointsServiceStub(grpc.insecure_channel(target))


def token_for(stack, principal: Principal) -> list[tuple[str, str]]:
    """A token signed with the test stack's key, for people who need not exist in registration
    (load tests with synthetic volunteers)."""
    key = Path(stack.secrets["JWT_PRIVATE_KEY_FILE"]).read_text()
    token, _ = TokenIssuer(key).issue(principal)
    return bearer(token)


def volunteer_principal(district_id: str, volunteer_id: str, unit) -> Principal:
    return Principal(subject=volunteer_id, district_id=district_id, role=c.ROLE_VOLUNTEER, unit_id=unit.unit_id,
                     unit_level=unit.level, unit_path=tuple(unit.path))


def run_points(stack, **extra_env: str):
    """A points process on the test database, stopped when its fixture ends."""
    with stack.running("points", extra_env=extra_env) as proc:
        yield proc
