"""Building an ordering test world through the real services: a district with its unit tree
(registration), a menu, residents and volunteers; waiting for ordering's read models."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from pymongo.database import Database

from services.common.auth import Principal, TokenIssuer
from services.common.clock import CHINA
from tests.support.grpc_helpers import bearer
from tests.support.registration import District, new_national_id, new_phone
from tests.support.stack import CATCH_UP_SECONDS
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import ordering_pb2_grpc
from wenming.ordering.v1 import types_pb2
from wenming.registration.v1 import registration_pb2 as reg

S = types_pb2.OrderStatus
Metadata = list[tuple[str, str]]


def next_month() -> tuple[str, dt.date]:
    """Next month in China time: its key (2026-05) and its first day."""
    today = dt.datetime.now(CHINA).date()
    first = (today.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return first.strftime("%Y-%m"), first


class Clock:
    """The offset file every ordering process of the session reads (CLOCK_OFFSET_FILE)."""

    def __init__(self, path: Path):
        self.path = path
        self.set(0)

    def set(self, seconds: float) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(seconds))
        tmp.replace(self.path)  # atomic: a process never reads a half-written offset

    def advance(self, seconds: float) -> None:
        self.set(float(self.path.read_text()) + seconds)


class Ordering:
    """A client of one ordering process."""

    def __init__(self, target: str, db: Database):
        self.channel = grpc.insecure_channel(target)
        self.stub = ordering_pb2_grpc.OrderingServiceStub(self.channel)
        self.db = db

    def close(self) -> None:
        self.channel.close()


@dataclass
class Volunteer:
    id: str
    number: str
    token: Metadata
    unit_id: str
    phone: str = ""  # the login


@dataclass
class World:
    """A district with center → institute → 2 stations → 4 courtyards, an admin token for every
    unit, a menu covering every handling level, and helpers for people."""

    district: District
    ordering: Ordering
    issuer: TokenIssuer
    items: dict[str, pb.MenuItem] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tree = self.district.small_tree()
        self.stub = self.ordering.stub
        self.db = self.ordering.db
        self.center = self.tree.center
        self.institute = self.tree.institute
        self.stations = self.tree.stations
        self.courtyards = self.tree.courtyards
        # the read model must know the units before orders name them
        wait_until(lambda: self.db.registry_units.count_documents({"district_id": self.district.id}) == 8,
                   timeout=CATCH_UP_SECONDS, what="the unit tree in ordering's read model")
        for key, name, category, level, skills, certs, minutes in [
            ("haircut", "助老理发", c.SERVICE_CATEGORY_CARE_FOR_OTHERS, c.UNIT_LEVEL_COURTYARD, [c.SKILL_HAIRCUT], [], 60),
            ("repair", "家电维修", c.SERVICE_CATEGORY_CARE_FOR_OTHERS, c.UNIT_LEVEL_STATION,
             [c.SKILL_APPLIANCE_REPAIR], [], 90),
            ("legal", "法律咨询", c.SERVICE_CATEGORY_LECTURE_LAW, c.UNIT_LEVEL_INSTITUTE, [c.SKILL_LEGAL_AID], [], 60),
            ("policy", "政策宣讲", c.SERVICE_CATEGORY_LECTURE_POLICY, c.UNIT_LEVEL_CENTER, [], [], 60),
            ("first_aid", "应急救护指导", c.SERVICE_CATEGORY_CARE_FOR_SOCIETY, c.UNIT_LEVEL_COURTYARD, [],
             ["first_aid"], 60),
        ]:
            self.items[key] = self.stub.PublishMenuItem(pb.PublishMenuItemRequest(
                name=name, category=category, handling_level=level, required_skills=skills,
                required_certifications=certs, expected_minutes=minutes), metadata=self.as_center(), timeout=10).item

    # ---- tokens ----

    def as_center(self) -> Metadata:
        return self.district.as_center()

    def as_admin(self, unit) -> Metadata:
        return bearer(self.tree.admins[unit.unit_id])

    def mint_resident(self, courtyard, resident_id: str) -> Metadata:
        """A resident token signed with the real key, exactly as registration's Login signs it (for
        tests that need many residents who only sign up; orders use registered residents)."""
        token, _ = self.issuer.issue(Principal(subject=resident_id, district_id=self.district.id,
                                               role=c.ROLE_RESIDENT, unit_id=courtyard.unit_id,
                                               unit_level=courtyard.level, unit_path=tuple(courtyard.path),
                                               unit_name=courtyard.name))
        return bearer(token)

    # ---- people ----

    def resident(self, courtyard, name: str = "张大爷") -> tuple[str, Metadata]:
        resident, token = self.district.resident(courtyard.unit_id, name=name)
        return resident.resident_id, bearer(token)

    def volunteers(self, unit, count: int = 1, *, skills=(c.SKILL_HAIRCUT,), availability: c.Availability | None = None,
                   name: str = "志愿者") -> list[Volunteer]:
        """ACTIVE volunteers serving at `unit`, logged in, and known to ordering's read model."""
        made = []
        for i in range(count):
            phone = new_phone()
            request = reg.RegisterVolunteerRequest(
                district_id=self.district.id, name=f"{name}{i}", national_id=new_national_id(), phone=phone,
                password="Test-pass-2026", political_status=reg.POLITICAL_STATUS_MASSES, skills=list(skills),
                service_unit_ids=[unit.unit_id], availability=availability)
            volunteer = self.district.stub.RegisterVolunteer(request, metadata=self.as_center(), timeout=10).volunteer
            made.append(Volunteer(volunteer.volunteer_id, volunteer.volunteer_number,
                                  bearer(self.district.volunteer_token(phone)), unit.unit_id, phone))
        ids = [v.id for v in made]
        wait_until(lambda: self.db.registry_volunteers.count_documents({"_id": {"$in": ids}}) == len(ids),
                   what="volunteers in ordering's read model")
        return made

    def volunteer(self, unit, **options) -> Volunteer:
        return self.volunteers(unit, 1, **options)[0]

    def wait_resident_known(self, resident_id: str) -> None:
        wait_until(lambda: self.db.registry_residents.find_one({"_id": resident_id}),
                   what="the resident in ordering's read model")

    # ---- orders ----

    def place(self, token: Metadata, item: str = "haircut", **fields) -> pb.Order:
        return self.stub.PlaceOrder(pb.PlaceOrderRequest(item_id=self.items[item].item_id, **fields),
                                    metadata=token, timeout=10).order

    def get(self, order_id: str, token: Metadata | None = None) -> pb.Order:
        return self.stub.GetOrder(pb.GetOrderRequest(order_id=order_id), metadata=token or self.as_center(),
                                  timeout=10).order

    def queue(self, token: Metadata, **request) -> list[pb.Order]:
        """A unit's whole queue (ListUnitQueue), page by page."""
        orders, page_token = [], ""
        while True:
            reply = self.stub.ListUnitQueue(pb.ListUnitQueueRequest(
                page=c.PageRequest(page_size=request.pop("page_size", 50), page_token=page_token), **request),
                metadata=token, timeout=10)
            orders += reply.orders
            page_token = reply.page.next_page_token
            if not page_token:
                return orders

    def holder(self, order: pb.Order) -> Metadata:
        """The admin token of the unit holding the order."""
        return bearer(self.tree.admins[order.current_unit.unit_id])

    def accepted_order(self, resident: Metadata, volunteer: Volunteer, item: str = "haircut") -> pb.Order:
        """Placed, acknowledged and dispatched at its courtyard, accepted by `volunteer`."""
        order = self.place(resident, item)
        self.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order.order_id), metadata=self.holder(order),
                                   timeout=10)
        self.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=order.order_id, volunteer_ids=[volunteer.id]),
                                metadata=self.holder(order), timeout=10)
        return self.stub.AcceptOrder(pb.AcceptOrderRequest(order_id=order.order_id), metadata=volunteer.token,
                                     timeout=10).order

    def code(self, order: pb.Order) -> str:
        return self.stub.IssueOrderCheckinCode(pb.IssueOrderCheckinCodeRequest(order_id=order.order_id),
                                               metadata=self.holder(order), timeout=10).checkin.code

    def served_order(self, resident: Metadata, volunteer: Volunteer, clock: Clock, minutes: int = 45) -> pb.Order:
        """…then checked in, `minutes` on site (by the clock), checked out with a report."""
        order = self.accepted_order(resident, volunteer)
        self.stub.CheckInOrder(pb.CheckInOrderRequest(order_id=order.order_id, code=self.code(order)),
                               metadata=volunteer.token, timeout=10)
        clock.advance(minutes * 60)
        return self.stub.CheckOutOrder(pb.CheckOutOrderRequest(order_id=order.order_id, code=self.code(order),
                                                               report="已为老人理发，老人很满意"),
                                       metadata=volunteer.token, timeout=10).order
