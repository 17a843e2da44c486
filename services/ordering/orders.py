"""Orders through the closed loop 点单 → 报单 → 派单 → 接单 → 评单 (docs/ordering.md has the table).

Every transition is ONE conditional update of the order document (guarded by its version) that
sets the new state, appends the step to the order's trail (who, when, why) and queues the event
carrying the order's snapshot after the change. When the guard fails because someone else moved
the order first, the order is read again and the rules are applied to what it is now: a move that
is no longer legal is refused with FAILED_PRECONDITION (this is how exactly one claim wins).

The schedulers (escalate_overdue with announce_deadlines, close_unrated) make the same guarded
moves, so two replicas running them at once still escalate, remind or close an order only once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from google.protobuf import message

from services.common.auth import Principal, Role, require_manages, require_role
from services.common.checkin import CheckinCodes
from services.common.clock import as_utc, china_day, clock
from services.common.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.common.documents import back_off
from services.common.events import EventSource, to_timestamp
from services.common.ids import new_id
from services.common.pii import PiiVault, mask_phone
from services.common.validation import Validator, valid_id
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

from . import hours as hours_rules
from . import metrics
from .metrics import status_name
from .matching import Matcher
from .menu import MenuBook
from .models import Order, UnitRefDoc
from .policy import Policies
from .readmodels import Registry
from .translate import order_snapshot, unit_ref_msg

if TYPE_CHECKING:
    from .index import OrderIndex

S = types_pb2.OrderStatus
L = common_pb2.UnitLevel
WAITING_ACK = (S.ORDER_STATUS_PLACED, S.ORDER_STATUS_ESCALATED)
# every status in which some unit or volunteer still has something to do
OPEN_STATUSES = [S.ORDER_STATUS_PLACED, S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_ESCALATED,
                 S.ORDER_STATUS_DISPATCHED, S.ORDER_STATUS_OPEN, S.ORDER_STATUS_ACCEPTED, S.ORDER_STATUS_IN_SERVICE,
                 S.ORDER_STATUS_COMPLETED, S.ORDER_STATUS_HOURS_CONFIRMED, S.ORDER_STATUS_RATED,
                 S.ORDER_STATUS_DECLINED]
BEFORE_SERVICE = (S.ORDER_STATUS_PLACED, S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_ESCALATED,
                  S.ORDER_STATUS_DISPATCHED, S.ORDER_STATUS_OPEN, S.ORDER_STATUS_ACCEPTED, S.ORDER_STATUS_DECLINED)
# the rating window runs on through the rating: what the unit has not closed by its end closes itself
AWAITING_CLOSE = (S.ORDER_STATUS_HOURS_CONFIRMED, S.ORDER_STATUS_RATED)
CHECKIN_PURPOSE = "order"
# a volunteer sees where to go and whom to call while serving, not before or after
SERVING = (S.ORDER_STATUS_ACCEPTED, S.ORDER_STATUS_IN_SERVICE)
ADDRESS_FIELD, CONTACT_FIELD = "order.address", "order.contact_phone"  # encryption context
WISH_PLANNED_MINUTES = 60  # a wish's planned time (the hours cap) until a unit knows better
MAX_ATTEMPTS = 10  # a team accepting or checking in together collides; backing off settles it
SCHEDULER_BATCH = 500
WARN_WHEN_LEFT = 5  # remind a unit when a fifth of its acknowledgement time is left
SCHEMA_VERSION = 2  # 2: queue keys by placement time, the schedulers' due days (migrations.py)
# the schedulers find what is due through the China day it falls due (an `$in` of days, which
# every server answers from an index), at most this many days back
DUE_LOOKBACK_DAYS = 366
DUE_DAYS = {"ack_due_at": "ack_due_day", "warn_at": "warn_day", "close_due_at": "close_due_day"}


def ack_deadlines(now: dt.datetime, allowed: dt.timedelta) -> dict:
    """When the unit an order reaches must acknowledge it, and when it is reminded."""
    return {"ack_due_at": now + allowed, "warn_at": now + allowed - allowed / WARN_WHEN_LEFT}


def _stamp(moment: dt.datetime) -> str:
    """UTC to the millisecond (what the database keeps), sortable as text."""
    moment = as_utc(moment)
    return f"{moment:%Y%m%d%H%M%S}{moment.microsecond // 1000:03d}"


def queue_key(raw: dict) -> str:
    """Sort key of a unit's queue: orders waiting for acknowledgement first, nearest deadline
    first; then the rest in the order they were placed."""
    if raw.get("status") in WAITING_ACK and raw.get("ack_due_at") is not None:
        return f"0|{as_utc(raw['ack_due_at']):%Y%m%d%H%M%S}|{raw['_id']}"
    return f"1|{_stamp(raw['placed_at'])}|{raw['_id']}"


def queue_key_time(qk: str) -> dt.datetime:
    """The deadline (waiting) or placement time a queue key sorts by."""
    stamp = qk.split("|", 2)[1]
    moment = dt.datetime.strptime(stamp[:14], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    return moment + dt.timedelta(milliseconds=int(stamp[14:] or 0))


def due_days(raw: dict) -> dict:
    """The China day each scheduler deadline of the order falls on (None when it has none)."""
    return {day: china_day(raw[due]) if raw.get(due) is not None else None for due, day in DUE_DAYS.items()}


def recent_days(now: dt.datetime) -> list[int]:
    today = china_day(now)
    return list(range(today - DUE_LOOKBACK_DAYS, today + 1))


@dataclass
class Move:
    """One transition: the new status, the event announcing it and the fields it changes."""

    to: int
    event: type[message.Message]
    fields: dict = field(default_factory=dict)
    event_fields: dict = field(default_factory=dict)
    reason: str = ""
    automatic: bool = False
    after: Callable[[Order], None] | None = None  # metrics once the move is stored
    step: bool = True  # a step of the trail; a reminder is not one


class OrderDesk:
    def __init__(self, registry: Registry, menu: MenuBook, policies: Policies, matcher: Matcher,
                 codes: CheckinCodes, events: EventSource, tolerance_minutes: int, vault: PiiVault,
                 index: OrderIndex):
        self.registry = registry
        self.menu = menu
        self.policies = policies
        self.matcher = matcher
        self.codes = codes
        self.events = events
        self.tolerance = tolerance_minutes
        self.vault = vault
        self.index = index

    # ---- loading and the rules every move shares ----

    @staticmethod
    def order_id(value: str) -> str:
        return valid_id("order_id", value)

    @staticmethod
    def id_and_reason(order_id: str, reason: str, *, required: bool = True) -> tuple[str, str]:
        """The order a move names and why (报单, 退回, 取消, 驳回 carry a reason)."""
        v = Validator()
        order_id = v.ident("order_id", order_id)
        reason = v.text("reason", reason, max_len=200, required=required)
        v.check()
        return order_id, reason

    @staticmethod
    def load(district_id: str, order_id: str) -> tuple[Order, dict]:
        raw = Order.raw_in_district(district_id, order_id, "order")
        return Order.from_raw(raw), raw

    @staticmethod
    def require_holding_admin(principal: Principal, order: Order) -> None:
        """Must-accept is the holding unit's duty: its own admin acts on the order."""
        if principal.role != Role.ROLE_UNIT_ADMIN or principal.unit_id != order.current.unit_id:
            raise PermissionDenied(f"only an admin of {order.current.name or order.current.unit_id}, the unit "
                                   "holding the order, may do this")

    def require_view(self, principal: Principal, order: Order) -> None:
        role = principal.role
        if role == Role.ROLE_SERVICE:
            return
        if role == Role.ROLE_RESIDENT and principal.subject == order.resident_id:
            return
        if role == Role.ROLE_VOLUNTEER and (principal.subject in order.offered_ids or self._claimable_by(principal, order)):
            return
        if role == Role.ROLE_UNIT_ADMIN and (principal.manages(order.current.path) or principal.manages(order.origin.path)):
            return
        raise PermissionDenied("that order is not yours to see")

    def _claimable_by(self, principal: Principal, order: Order) -> bool:
        if order.status != S.ORDER_STATUS_OPEN:
            return False
        volunteer = self.registry.volunteer(order.district_id, principal.subject)
        scope = volunteer.get("scope", ()) if volunteer else principal.unit_path
        return order.current.unit_id in scope

    def cap_minutes(self, order: Order) -> int:
        return order.planned_minutes + self.tolerance

    # ---- committing a move ----

    def _commit(self, order: Order, raw: dict, move: Move, actor: Principal | None, now: dt.datetime) -> Order | None:
        transition = {
            "from_status": order.status, "to_status": move.to, "event_type": move.event.DESCRIPTOR.full_name,
            "actor_id": actor.subject if actor else "", "actor_role": actor.role if actor else 0,
            "unit_id": order.current.unit_id, "reason": move.reason, "automatic": move.automatic, "at": now,
        }
        fields = {**move.fields, "status": move.to}
        # deadlines exist only while they apply (the schedulers find orders by them)
        if move.to not in WAITING_ACK:
            fields["ack_due_at"] = fields["warn_at"] = None
        if move.to not in AWAITING_CLOSE:
            fields["close_due_at"] = None
        version = raw["version"] + 1
        trail = [*raw.get("trail", ()), transition] if move.step else raw.get("trail", [])
        after_raw = {**raw, **fields, "version": version, "trail": trail}
        fields["queue_key"] = after_raw["queue_key"] = queue_key(after_raw)
        fields.update(due_days(after_raw), schema_version=SCHEMA_VERSION)
        after = Order.from_raw(after_raw)
        payload = move.event(order=order_snapshot(after), **move.event_fields)
        event = self.events.new(payload, district_id=order.district_id, aggregate_type="order", aggregate_id=order.id,
                                version=version, actor_id=actor.subject if actor else "", occurred_at=now)
        update = {"$set": fields, "$push": {"trail": transition}} if move.step else {"$set": fields}
        changed = Order.change({"_id": order.id, "version": raw["version"]}, update, [event])
        if changed is not None:
            self.index.record(changed.to_mongo().to_dict(), raw)
            if move.to != order.status:  # a second acceptance or check-in enters no new status
                metrics.ORDER_TRANSITIONS.labels(status_name(move.to), metrics.level_name(changed.current.level)).inc()
            if move.after:
                move.after(changed)
        return changed

    def _run(self, principal: Principal, order_id: str, plan: Callable[[Order, dt.datetime], Move]) -> Order:
        """Loads, applies the rules (`plan` authorizes and raises when the move is illegal), and
        commits; a lost race re-reads and applies the rules again."""
        for attempt in range(MAX_ATTEMPTS):
            order, raw = self.load(principal.district_id, order_id)
            now = clock.now()
            changed = self._commit(order, raw, plan(order, now), principal, now)
            if changed is not None:
                return changed
            back_off(attempt)
        raise Aborted("the order kept changing while this request was applied; reload and retry")

    # ---- 点单: placing ----

    def place(self, principal: Principal, req: pb.PlaceOrderRequest) -> Order:
        v = Validator()
        item_id = v.ident("item_id", req.item_id, required=False)
        wish = v.text("wish", req.wish, max_len=100, required=False)
        if bool(item_id) == bool(wish):
            v.fail("item_id", "name a menu item, or leave it empty and describe a wish (微心愿) instead")
        address = v.text("address", req.address, max_len=100, required=False)
        phone = v.mobile("contact_phone", req.contact_phone, required=False)
        resident_id = v.ident("resident_id", req.resident_id, required=False)
        note = v.text("note", req.note, max_len=500, required=False, multiline=True)
        now = clock.now()
        wanted_at = v.timestamp("wanted_at", req, required=False)
        if wanted_at is not None and not now - dt.timedelta(hours=1) <= wanted_at <= now + dt.timedelta(days=90):
            v.fail("wanted_at", "must be between now and 90 days ahead")
        v.check()

        origin_path, origin_name, resident_id = self._origin(principal, resident_id)
        wanted = self._wish(wish) if wish else self._item(principal.district_id, item_id, origin_path)

        district = principal.district_id
        target_depth = wanted["handling_level"] - L.UNIT_LEVEL_CENTER  # the center sits at depth 0
        origin = self.registry.unit_ref(district, origin_path)
        origin["name"] = origin["name"] or origin_name
        current = origin if target_depth == len(origin_path) - 1 else \
            self.registry.unit_ref(district, origin_path[:target_depth + 1])
        routed_past = [origin if depth == len(origin_path) - 1 else self.registry.unit_ref(district,
                                                                                           origin_path[:depth + 1])
                       for depth in range(len(origin_path) - 1, target_depth, -1)]
        policy = self.policies.get(district)
        order_id = new_id("ord")
        transition = {"from_status": 0, "to_status": S.ORDER_STATUS_PLACED,
                      "event_type": ev.OrderPlaced.DESCRIPTOR.full_name, "actor_id": principal.subject,
                      "actor_role": principal.role, "unit_id": current["unit_id"],
                      "reason": "" if not routed_past else "事项由上级办理，直接报送", "automatic": False, "at": now}
        raw = {
            "_id": order_id, "district_id": district, **wanted, "status": S.ORDER_STATUS_PLACED, "origin": origin,
            "current": current, "routed_past": routed_past, "resident_id": resident_id,
            "placed_on_behalf": principal.role != Role.ROLE_RESIDENT, "placed_by": principal.subject, "note": note,
            **self._personal(district, address, phone),
            "urgent": req.urgent, "wanted_at": wanted_at, "arrived_at": now,
            **ack_deadlines(now, policy.acknowledge_within(current["level"])), "placed_at": now, "trail": [transition],
        }
        raw.update(queue_key=queue_key(raw), schema_version=SCHEMA_VERSION, **due_days(raw))
        order = Order.from_raw(raw)
        event = self.events.new(
            ev.OrderPlaced(order=order_snapshot(order), routed_past=[unit_ref_msg(u) for u in order.routed_past]),
            district_id=district, aggregate_type="order", aggregate_id=order_id, version=1,
            actor_id=principal.subject, occurred_at=now)
        Order.insert_raw(raw, [event])
        order.version = 1
        self.index.record({**raw, "version": 1})
        metrics.ORDER_TRANSITIONS.labels(status_name(S.ORDER_STATUS_PLACED), metrics.level_name(current["level"])).inc()
        return order

    def _item(self, district_id: str, item_id: str, origin_path: list[str]) -> dict:
        """The order fields a menu item decides."""
        item = self.menu.offered(district_id, item_id)
        if item.retired:
            raise FailedPrecondition(f"menu item {item.name!r} has been retired and takes no new orders")
        if item.owner.unit_id not in origin_path:
            raise FailedPrecondition(f"menu item {item.name!r} is not on the menu at this courtyard")
        return {"item_id": item.id, "item_name": item.name, "wish": False, "category": item.category,
                "handling_level": item.handling_level, "required_skills": list(item.required_skills),
                "required_certifications": list(item.required_certifications), "points_rule": item.points_rule,
                "planned_minutes": item.expected_minutes}

    @staticmethod
    def _wish(wish: str) -> dict:
        """微心愿: no item, so no requirements; the courtyard takes it first (小院能办小院办)."""
        return {"item_id": "", "item_name": wish, "wish": True, "category": common_pb2.SERVICE_CATEGORY_UNSPECIFIED,
                "handling_level": L.UNIT_LEVEL_COURTYARD, "required_skills": [], "required_certifications": [],
                "points_rule": "", "planned_minutes": WISH_PLANNED_MINUTES}

    def _personal(self, district_id: str, address: str, phone: str) -> dict:
        """Where and whom to call, encrypted; only the masked phone is stored in the clear."""
        fields: dict = {"contact_masked": mask_phone(phone) if phone else ""}
        if address:
            fields["address_enc"] = self.vault.encrypt(address, district_id=district_id, field=ADDRESS_FIELD)
        if phone:
            fields["contact_enc"] = self.vault.encrypt(phone, district_id=district_id, field=CONTACT_FIELD)
        return fields

    def contact_view(self, principal: Principal, order: Order) -> tuple[str, str]:
        """(address, phone) as `principal` may see them: in full for the resident (or whoever
        placed it for them), the holding unit's admins and the volunteers serving it now; the
        masked phone and no address for everyone else."""
        serving = (principal.subject in (order.resident_id, order.placed_by)
                   or (principal.role == Role.ROLE_UNIT_ADMIN and principal.unit_id == order.current.unit_id)
                   or (principal.role == Role.ROLE_VOLUNTEER and principal.subject in order.volunteer_ids
                       and order.status in SERVING))
        if not serving:
            return "", order.contact_masked
        return (self._decrypt(order, order.address_enc, ADDRESS_FIELD),
                self._decrypt(order, order.contact_enc, CONTACT_FIELD))

    def _decrypt(self, order: Order, blob: bytes | None, field_name: str) -> str:
        return self.vault.decrypt(bytes(blob), district_id=order.district_id, field=field_name) if blob else ""

    def _origin(self, principal: Principal, resident_id: str) -> tuple[list[str], str, str]:
        """The resident's courtyard path and name, and the resident; staff must run that courtyard."""
        if principal.role == Role.ROLE_RESIDENT:
            if resident_id and resident_id != principal.subject:
                raise PermissionDenied("a resident places orders for themself only")
            if principal.unit_level != L.UNIT_LEVEL_COURTYARD or not principal.unit_path:
                raise FailedPrecondition("your account is not bound to a courtyard (小院)")
            return list(principal.unit_path), principal.unit_name, principal.subject
        require_role(principal, Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE)
        if not resident_id:
            raise InvalidArgument.field("resident_id", "must name the resident the order is placed for")
        resident = self.registry.resident(principal.district_id, resident_id)
        if resident is None:
            raise NotFound("resident", resident_id)
        courtyard = resident["courtyard"]
        require_manages(principal, principal.district_id, courtyard["path"], "resident's courtyard")
        return list(courtyard["path"]), courtyard["name"], resident_id

    # ---- 四必接: acknowledging and escalating ----

    def acknowledge(self, principal: Principal, order_id: str) -> Order:
        order_id = self.order_id(order_id)

        def plan(order: Order, now: dt.datetime) -> Move:
            self.require_holding_admin(principal, order)
            self._require_status(order, WAITING_ACK, "acknowledged")
            waited = int((now - as_utc(order.arrived_at)).total_seconds())
            level = metrics.level_name(order.current.level)
            return Move(S.ORDER_STATUS_ACKNOWLEDGED, ev.OrderAcknowledged, fields={"acknowledged_at": now},
                        event_fields={"unit_id": order.current.unit_id, "seconds_to_acknowledge": waited},
                        after=lambda _: metrics.TIME_TO_ACKNOWLEDGE.labels(level).observe(waited))

        return self._run(principal, order_id, plan)

    def escalate(self, principal: Principal, order_id: str, reason: str) -> Order:
        order_id, reason = self.id_and_reason(order_id, reason)

        def plan(order: Order, now: dt.datetime) -> Move:
            self.require_holding_admin(principal, order)
            self._require_status(order, (S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_DECLINED), "escalated",
                                 hint="acknowledge it first (四必接), then escalate")
            return self._escalation(order, now, reason, automatic=False)

        return self._run(principal, order_id, plan)

    def _escalation(self, order: Order, now: dt.datetime, reason: str, automatic: bool) -> Move:
        if order.current.level == L.UNIT_LEVEL_CENTER:
            raise FailedPrecondition("the center is the top of the district: it handles the order or rejects it")
        parent = self.registry.unit_ref(order.district_id, list(order.current.path[:-1]))
        allowed = self.policies.get(order.district_id).acknowledge_within(parent["level"])
        fields = {"current": parent, "arrived_at": now, **ack_deadlines(now, allowed), "overdue_flagged": False,
                  "team_id": "", "offered_ids": [], "volunteer_ids": []}
        if automatic:
            fields["sla_breaches"] = order.sla_breaches + 1
        return Move(S.ORDER_STATUS_ESCALATED, ev.OrderEscalated, fields=fields, reason=reason, automatic=automatic,
                    event_fields={"from_unit": unit_ref_msg(order.current), "to_unit": unit_ref_msg(UnitRefDoc(**parent)),
                                  "reason": reason, "automatic": automatic})

    # ---- 派单: dispatching, the claim list, claiming ----

    def dispatch(self, principal: Principal, req: pb.DispatchOrderRequest) -> Order:
        v = Validator()
        order_id = v.ident("order_id", req.order_id)
        team_id = v.ident("team_id", req.team_id, required=False)
        volunteer_ids = v.ids("volunteer_ids", list(req.volunteer_ids), max_count=20)
        if team_id and volunteer_ids:
            v.fail("team_id", "dispatch to a team or to named volunteers, not both")
        elif not team_id and not volunteer_ids:
            v.fail("volunteer_ids", "name the volunteers, or give a team_id")
        v.check()

        def plan(order: Order, now: dt.datetime) -> Move:
            self.require_holding_admin(principal, order)
            self._require_status(order, (S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_DECLINED, S.ORDER_STATUS_OPEN),
                                 "dispatched", hint="acknowledge it first (四必接)")
            offered = self._team_offer(order, team_id) if team_id else \
                [self.matcher.require_eligible(order, vid)["_id"] for vid in volunteer_ids]
            return Move(S.ORDER_STATUS_DISPATCHED, ev.OrderDispatched,
                        fields={"team_id": team_id, "offered_ids": offered, "volunteer_ids": [],
                                "dispatched_at": order.dispatched_at or now},
                        event_fields={"team_id": team_id, "volunteer_ids": offered},
                        after=self._dispatch_metrics(order, now))

        return self._run(principal, order_id, plan)

    def _team_offer(self, order: Order, team_id: str) -> list[str]:
        team = self.registry.team(order.district_id, team_id)
        if team is None:
            raise NotFound("team", team_id)
        # a team of the holding unit, of a unit above it (e.g. the center's 法律服务队), or below it
        if team["unit_id"] not in order.current.path and order.current.unit_id not in team["unit_path"]:
            raise FailedPrecondition(f"team {team['name']!r} belongs to a unit outside this order's line")
        offered = self.matcher.eligible_members(order, list(team["member_ids"]))
        if not offered:
            raise FailedPrecondition(f"no member of team {team['name']!r} is active with the skills and "
                                     "certifications this order needs")
        return offered

    @staticmethod
    def _dispatch_metrics(order: Order, now: dt.datetime) -> Callable[[Order], None] | None:
        if order.dispatched_at is not None:
            return None  # re-dispatch: the first one was counted
        waited = (now - as_utc(order.placed_at)).total_seconds()
        level = metrics.level_name(order.current.level)
        return lambda _: metrics.TIME_TO_DISPATCH.labels(level).observe(waited)

    def open(self, principal: Principal, order_id: str) -> Order:
        order_id = self.order_id(order_id)

        def plan(order: Order, now: dt.datetime) -> Move:
            self.require_holding_admin(principal, order)
            self._require_status(order, (S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_DECLINED),
                                 "put on the claim list", hint="acknowledge it first (四必接)")
            return Move(S.ORDER_STATUS_OPEN, ev.OrderOpened,
                        fields={"team_id": "", "offered_ids": [], "volunteer_ids": [],
                                "dispatched_at": order.dispatched_at or now},
                        after=self._dispatch_metrics(order, now))

        return self._run(principal, order_id, plan)

    def claim(self, principal: Principal, order_id: str) -> Order:
        order_id = self.order_id(order_id)
        require_role(principal, Role.ROLE_VOLUNTEER)

        def plan(order: Order, now: dt.datetime) -> Move:
            volunteer = self._volunteer_profile(principal)
            if order.current.unit_id not in volunteer.get("scope", ()):
                raise PermissionDenied("that order is not open to you: it is handled outside the units you serve")
            if order.status != S.ORDER_STATUS_OPEN:
                metrics.CLAIMS.labels("lost").inc()  # someone else's claim (or the unit) came first
                raise FailedPrecondition(f"the order is no longer open for claiming (it is {status_name(order.status)})")
            self.matcher.require_eligible(order, principal.subject, volunteer=volunteer)
            return Move(S.ORDER_STATUS_ACCEPTED, ev.OrderClaimed,
                        fields={"offered_ids": [principal.subject], "volunteer_ids": [principal.subject],
                                "accepted_at": now},
                        event_fields={"volunteer_id": principal.subject},
                        after=self._accept_metrics(order, now))

        claimed = self._run(principal, order_id, plan)
        metrics.CLAIMS.labels("won").inc()
        return claimed

    def _volunteer_profile(self, principal: Principal) -> dict:
        volunteer = self.registry.volunteer(principal.district_id, principal.subject)
        if volunteer is None:
            raise FailedPrecondition("your volunteer profile has not reached the ordering service yet; "
                                     "try again in a moment")
        return volunteer

    @staticmethod
    def _accept_metrics(order: Order, now: dt.datetime) -> Callable[[Order], None] | None:
        if order.accepted_at is not None or order.dispatched_at is None:
            return None
        waited = (now - as_utc(order.dispatched_at)).total_seconds()
        level = metrics.level_name(order.current.level)
        return lambda _: metrics.TIME_TO_ACCEPT.labels(level).observe(waited)

    # ---- 接单: accepting and declining ----

    def accept(self, principal: Principal, order_id: str) -> Order:
        order_id = self.order_id(order_id)

        def plan(order: Order, now: dt.datetime) -> Move:
            self._require_offered(principal, order)
            self._require_status(order, (S.ORDER_STATUS_DISPATCHED, S.ORDER_STATUS_ACCEPTED), "accepted")
            if principal.subject in order.volunteer_ids:
                raise FailedPrecondition("you have already accepted this order")
            self.matcher.require_eligible(order, principal.subject, volunteer=self._volunteer_profile(principal),
                                          check_scope=False)
            return Move(S.ORDER_STATUS_ACCEPTED, ev.OrderAccepted,
                        fields={"volunteer_ids": [*order.volunteer_ids, principal.subject],
                                "accepted_at": order.accepted_at or now},
                        event_fields={"volunteer_id": principal.subject}, after=self._accept_metrics(order, now))

        return self._run(principal, order_id, plan)

    def decline(self, principal: Principal, order_id: str, reason: str) -> Order:
        order_id, reason = self.id_and_reason(order_id, reason)

        def plan(order: Order, now: dt.datetime) -> Move:
            self._require_offered(principal, order)
            self._require_status(order, (S.ORDER_STATUS_DISPATCHED, S.ORDER_STATUS_ACCEPTED), "given back",
                                 hint="after check-in the service is under way")
            offered = [i for i in order.offered_ids if i != principal.subject]
            accepted = [i for i in order.volunteer_ids if i != principal.subject]
            # others who accepted carry on; others still offered may accept; nobody left: re-dispatch
            to = S.ORDER_STATUS_ACCEPTED if accepted else S.ORDER_STATUS_DISPATCHED if offered else \
                S.ORDER_STATUS_DECLINED
            fields = {"offered_ids": offered, "volunteer_ids": accepted}
            if to == S.ORDER_STATUS_DECLINED:
                fields["team_id"] = ""
            return Move(to, ev.OrderDeclined, fields=fields, reason=reason,
                        event_fields={"volunteer_id": principal.subject, "reason": reason})

        return self._run(principal, order_id, plan)

    @staticmethod
    def _require_offered(principal: Principal, order: Order) -> None:
        if principal.role != Role.ROLE_VOLUNTEER or principal.subject not in order.offered_ids:
            raise PermissionDenied("that order was not dispatched to you")

    @staticmethod
    def _require_status(order: Order, allowed: tuple[int, ...], what: str, hint: str = "") -> None:
        if order.status not in allowed:
            names = ", ".join(status_name(s) for s in allowed)
            raise FailedPrecondition(f"an order that is {status_name(order.status)} cannot be {what} (only "
                                     f"{names}){'; ' + hint if hint else ''}")

    # ---- 签到/签退: service on site ----

    def issue_code(self, principal: Principal, order_id: str) -> tuple[str, float]:
        order_id = self.order_id(order_id)
        order, _ = self.load(principal.district_id, order_id)
        self.require_holding_admin(principal, order)
        self._require_status(order, (S.ORDER_STATUS_ACCEPTED, S.ORDER_STATUS_IN_SERVICE), "checked in to")
        return self.codes.issue(CHECKIN_PURPOSE, order.id)

    def _require_code(self, order: Order, code: str) -> None:
        if not self.codes.verify(CHECKIN_PURPOSE, order.id, code):
            raise InvalidArgument.field("code", "is expired or is not a check-in code of this order; scan the "
                                                "current QR code")

    def check_in(self, principal: Principal, order_id: str, code: str) -> Order:
        v = Validator()
        order_id = v.ident("order_id", order_id)
        code = v.text("code", code, max_len=64)
        v.check()

        def plan(order: Order, now: dt.datetime) -> Move:
            self._require_serving(principal, order)
            self._require_status(order, (S.ORDER_STATUS_ACCEPTED, S.ORDER_STATUS_IN_SERVICE), "checked in to")
            if principal.subject in order.sessions:
                raise FailedPrecondition("you have already checked in to this order")
            self._require_code(order, code)
            sessions = {vid: s.to_mongo().to_dict() for vid, s in order.sessions.items()}
            sessions[principal.subject] = {"checked_in_at": now, "measured_minutes": 0}
            return Move(S.ORDER_STATUS_IN_SERVICE, ev.OrderCheckedIn, fields={"sessions": sessions},
                        event_fields={"volunteer_id": principal.subject, "at": to_timestamp(now)})

        return self._run(principal, order_id, plan)

    def check_out(self, principal: Principal, req: pb.CheckOutOrderRequest) -> Order:
        v = Validator()
        order_id = v.ident("order_id", req.order_id)
        code = v.text("code", req.code, max_len=64)
        report = v.text("report", req.report, max_len=2000, multiline=True)
        photos = v.ids("photo_asset_ids", list(req.photo_asset_ids), max_count=9)
        v.check()

        def plan(order: Order, now: dt.datetime) -> Move:
            self._require_serving(principal, order)
            self._require_status(order, (S.ORDER_STATUS_IN_SERVICE,), "checked out of")
            if principal.subject not in order.sessions:
                raise FailedPrecondition("check in first: you have no check-in on this order")
            self._require_code(order, code)
            # the report closes the service for everyone on site: the volunteers served together
            cap = self.cap_minutes(order)
            sessions, measured = {}, []
            for vid, session in sorted(order.sessions.items()):
                raw = session.to_mongo().to_dict()
                if session.checked_out_at is None:
                    on_site = int((now - as_utc(session.checked_in_at)).total_seconds() // 60)
                    raw.update(checked_out_at=now, measured_minutes=max(0, min(cap, on_site)))
                sessions[vid] = raw
                measured.append(common_pb2.VolunteerHours(volunteer_id=vid, minutes=raw["measured_minutes"],
                                                          source=common_pb2.HOURS_SOURCE_VERIFIED))
            return Move(S.ORDER_STATUS_COMPLETED, ev.OrderCompleted,
                        fields={"sessions": sessions, "report": report, "photo_asset_ids": photos,
                                "completed_at": now},
                        event_fields={"report": report, "photo_asset_ids": photos, "measured": measured})

        return self._run(principal, order_id, plan)

    @staticmethod
    def _require_serving(principal: Principal, order: Order) -> None:
        if principal.role != Role.ROLE_VOLUNTEER or principal.subject not in order.volunteer_ids:
            raise PermissionDenied("only a volunteer who accepted this order may check in or out")

    # ---- 时长审核, 评单, closing ----

    def confirm_hours(self, principal: Principal, req: pb.ConfirmOrderHoursRequest) -> Order:
        v = Validator()
        order_id = v.ident("order_id", req.order_id)
        manual = hours_rules.parse_manual(v, req.manual)
        v.check()

        def plan(order: Order, now: dt.datetime) -> Move:
            self.require_holding_admin(principal, order)
            self._require_status(order, (S.ORDER_STATUS_COMPLETED,), "given confirmed hours")
            hours_rules.check_manual(req.manual, lambda vid: vid in order.volunteer_ids, "did not serve this order",
                                     order.planned_minutes, self.tolerance)
            # a visit shorter than a minute measures 0: confirming would credit nothing without a
            # word, so the unit enters those hours itself (docs/ordering.md, 时长审核)
            unmeasured = sorted(vid for vid in order.volunteer_ids if vid not in manual and vid in order.sessions
                                and order.sessions[vid].measured_minutes == 0)
            if unmeasured:
                raise FailedPrecondition(f"check-in and check-out measured less than a minute for {', '.join(unmeasured)}: "
                                         "enter their hours as manual hours (manual[].minutes) to confirm")
            hours = []
            for vid in order.volunteer_ids:
                if vid in manual:
                    hours.append(hours_rules.entry(vid, manual[vid], manual=True))
                elif vid in order.sessions:
                    hours.append(hours_rules.entry(vid, order.sessions[vid].measured_minutes, manual=False))
            window = self.policies.get(order.district_id).rating_window
            return Move(S.ORDER_STATUS_HOURS_CONFIRMED, ev.OrderHoursConfirmed,
                        fields={"hours": hours, "hours_recorded_by": order.current.to_mongo().to_dict(),
                                "hours_confirmed_at": now, "close_due_at": now + window},
                        event_fields={"hours": [common_pb2.VolunteerHours(**h) for h in hours],
                                      "recorded_by": unit_ref_msg(order.current)})

        return self._run(principal, order_id, plan)

    def rate(self, principal: Principal, req: pb.RateOrderRequest) -> Order:
        v = Validator()
        order_id = v.ident("order_id", req.order_id)
        v.int_range("rating", req.rating, 1, 5)
        comment = v.text("comment", req.comment, max_len=500, required=False, multiline=True)
        v.check()

        def plan(order: Order, now: dt.datetime) -> Move:
            if principal.role != Role.ROLE_RESIDENT or principal.subject != order.resident_id:
                raise PermissionDenied("only the resident who ordered the service may rate it")
            if order.status == S.ORDER_STATUS_RATED or order.rating:
                raise FailedPrecondition("this order has already been rated (one rating per order)")
            self._require_status(order, (S.ORDER_STATUS_HOURS_CONFIRMED,), "rated",
                                 hint="it can be rated once the unit has confirmed the service")
            if order.close_due_at is not None and now >= as_utc(order.close_due_at):
                raise FailedPrecondition("the rating window of this order has ended (评价期已过)")
            return Move(S.ORDER_STATUS_RATED, ev.OrderRated, fields={"rating": req.rating, "comment": comment,
                                                                     "rated_at": now},
                        event_fields={"rating": req.rating, "comment": comment})

        return self._run(principal, order_id, plan)

    def close(self, principal: Principal, order_id: str) -> Order:
        order_id = self.order_id(order_id)

        def plan(order: Order, now: dt.datetime) -> Move:
            self.require_holding_admin(principal, order)
            self._require_status(order, (S.ORDER_STATUS_RATED,), "closed",
                                 hint="an unrated order closes by itself when its rating window ends")
            return Move(S.ORDER_STATUS_CLOSED, ev.OrderClosed, fields={"closed_at": now},
                        event_fields={"automatic": False})

        return self._run(principal, order_id, plan)

    # ---- ends before service ----

    def cancel(self, principal: Principal, order_id: str, reason: str) -> Order:
        order_id, reason = self.id_and_reason(order_id, reason, required=False)

        def plan(order: Order, now: dt.datetime) -> Move:
            own = principal.role == Role.ROLE_RESIDENT and principal.subject == order.resident_id
            if not own and principal.subject != order.placed_by:
                raise PermissionDenied("only the resident (or the staff member who placed it for them) may cancel")
            self._require_status(order, BEFORE_SERVICE, "cancelled", hint="the service has already started")
            return Move(S.ORDER_STATUS_CANCELLED, ev.OrderCancelled, fields={"closing_reason": reason,
                                                                             "closed_at": now},
                        reason=reason, event_fields={"reason": reason})

        return self._run(principal, order_id, plan)

    def reject(self, principal: Principal, order_id: str, reason: str) -> Order:
        order_id, reason = self.id_and_reason(order_id, reason)
        if not principal.is_center_admin:
            raise PermissionDenied("only the center may reject an order")

        def plan(order: Order, now: dt.datetime) -> Move:
            if order.current.level != L.UNIT_LEVEL_CENTER:
                self.require_view(principal, order)
                raise FailedPrecondition("only an order that has reached the center can be rejected "
                                         f"(it is at {order.current.name or order.current.unit_id})")
            self.require_holding_admin(principal, order)
            self._require_status(order, (*WAITING_ACK, S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_DECLINED),
                                 "rejected")
            return Move(S.ORDER_STATUS_REJECTED, ev.OrderRejected, fields={"closing_reason": reason,
                                                                           "closed_at": now},
                        reason=reason, event_fields={"reason": reason})

        return self._run(principal, order_id, plan)

    # ---- schedulers (run by one replica at a time; each move is still guarded) ----

    def escalate_overdue(self) -> int:
        """四必接: orders whose unit let the acknowledgement deadline pass move up by themselves;
        at the center (nothing above) the breach is counted once and the order stays overdue."""
        now = clock.now()
        changed = 0
        for raw in Order.collection().find({"ack_due_day": {"$in": recent_days(now)}, "ack_due_at": {"$lt": now},
                                            "overdue_flagged": False},
                                           {"outbox": 0}).limit(SCHEDULER_BATCH):
            order = Order.from_raw(raw)
            if order.status not in WAITING_ACK:
                continue
            level = metrics.level_name(order.current.level)
            # the deadline this order was given when it reached the unit, not today's policy
            minutes = round((as_utc(order.ack_due_at) - as_utc(order.arrived_at)).total_seconds() / 60)
            if order.current.level == L.UNIT_LEVEL_CENTER:
                move = Move(order.status, ev.OrderOverdue, fields={"overdue_flagged": True, "warn_at": None,
                                                                   "sla_breaches": order.sla_breaches + 1},
                            reason=f"{order.current.name or '中心'}未在{minutes}分钟内受理，已超时", automatic=True,
                            event_fields={"unit": unit_ref_msg(order.current), "allowed_minutes": minutes})
            else:
                reason = f"{order.current.name or '本级'}未在{minutes}分钟内受理，按四必接自动上报"
                move = self._escalation(order, now, reason, automatic=True)
            if self._commit(order, raw, move, None, now) is not None:
                metrics.SLA_BREACHES.labels(level).inc()
                changed += 1
        return changed

    def announce_deadlines(self) -> int:
        """Once per unit an order waits at: its deadline is near (a fifth of its time or less is
        left), so its heads can act before the order climbs. An order already overdue is left to
        escalate_overdue, which sets the next unit's reminder."""
        now = clock.now()
        announced = 0
        for raw in Order.collection().find({"warn_day": {"$in": recent_days(now)}, "warn_at": {"$lt": now}},
                                           {"outbox": 0}).limit(SCHEDULER_BATCH):
            order = Order.from_raw(raw)
            if order.status not in WAITING_ACK or order.ack_due_at is None or as_utc(order.ack_due_at) <= now:
                continue
            move = Move(order.status, ev.OrderDeadlineApproaching, fields={"warn_at": None}, step=False,
                        event_fields={"unit": unit_ref_msg(order.current), "due_at": to_timestamp(order.ack_due_at)})
            if self._commit(order, raw, move, None, now) is not None:
                announced += 1
        return announced

    def run_sla(self) -> int:
        """The SLA job: escalate what is overdue, then remind the units whose deadline is near."""
        return self.escalate_overdue() + self.announce_deadlines()

    def close_unrated(self) -> int:
        """Orders whose rating window passed close by themselves: unrated ones, and rated ones
        the unit has not closed."""
        now = clock.now()
        changed = 0
        for raw in Order.collection().find({"close_due_day": {"$in": recent_days(now)},
                                            "close_due_at": {"$lt": now}}, {"outbox": 0}).limit(SCHEDULER_BATCH):
            order = Order.from_raw(raw)
            if order.status not in AWAITING_CLOSE:
                continue
            reason = "已评价，评价期满自动办结" if order.status == S.ORDER_STATUS_RATED else "评价期内未评价，自动办结"
            move = Move(S.ORDER_STATUS_CLOSED, ev.OrderClosed, fields={"closed_at": now},
                        reason=reason, automatic=True, event_fields={"automatic": True})
            if self._commit(order, raw, move, None, now) is not None:
                changed += 1
        return changed
