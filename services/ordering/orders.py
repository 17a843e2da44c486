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
from typing import TYPE_CHECKING

from services.common.auth import Principal, Role, require_manages, require_role
from services.common.checkin import CheckinCodes
from services.common.clock import as_utc, china_day, clock
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.common.events import EventSource
from services.common.ids import new_id
from services.common.pii import PiiVault, mask_phone
from services.common.retry import LOST_RACE, Retry, until_written
from services.common.validation import Validator, valid_id
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

from . import hours as hours_rules
from . import metrics
from . import order_rules as rules
from .metrics import status_name
from .matching import Matcher
from .menu import MenuBook
from .models import Order
from .order_rules import AWAITING_CLOSE, SERVING, WAITING_ACK, Move, ack_deadlines
from .policy import Policies
from .readmodels import Registry
from .translate import order_snapshot, unit_ref_msg

if TYPE_CHECKING:
    from .index import OrderIndex

S = types_pb2.OrderStatus
L = common_pb2.UnitLevel
# every status in which some unit or volunteer still has something to do
OPEN_STATUSES = [S.ORDER_STATUS_PLACED, S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_ESCALATED,
                 S.ORDER_STATUS_DISPATCHED, S.ORDER_STATUS_OPEN, S.ORDER_STATUS_ACCEPTED, S.ORDER_STATUS_IN_SERVICE,
                 S.ORDER_STATUS_COMPLETED, S.ORDER_STATUS_HOURS_CONFIRMED, S.ORDER_STATUS_RATED,
                 S.ORDER_STATUS_DECLINED]
ADDRESS_FIELD, CONTACT_FIELD = "order.address", "order.contact_phone"  # encryption context
WISH_PLANNED_MINUTES = 60  # a wish's planned time (the hours cap) until a unit knows better
CONFLICTS = Retry(max_attempts=10, backoff=LOST_RACE)  # a team accepting or checking in together collides; backing off settles it
SCHEDULER_BATCH = 500
SCHEMA_VERSION = 2  # 2: queue keys by placement time, the schedulers' due days (migrations.py)
# the schedulers find what is due through the China day it falls due (an `$in` of days, which
# every server answers from an index), at most this many days back
DUE_LOOKBACK_DAYS = 366
DUE_DAYS = {"ack_due_at": "ack_due_day", "warn_at": "warn_day", "close_due_at": "close_due_day"}


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


class OrderDesk:
    """Validates each request, then runs the order's rules (order_rules.py) against the stored
    order and commits the move they make."""

    def __init__(self, registry: Registry, menu: MenuBook, policies: Policies, matcher: Matcher,
                 codes: CheckinCodes, events: EventSource, tolerance_minutes: int, vault: PiiVault,
                 index: OrderIndex):
        self.registry = registry
        self.menu = menu
        self.policies = policies
        self.codes = codes
        self.events = events
        self.vault = vault
        self.index = index
        self.lookups = rules.OrderLookups(directory=registry, policy=policies.get, eligibility=matcher, codes=codes,
                                          tolerance_minutes=tolerance_minutes)

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

    def require_view(self, principal: Principal, order: Order) -> None:
        rules.require_view(principal, order, self.lookups)

    # ---- committing a move ----

    def _commit(self, order: Order, raw: dict, move: Move, actor: Principal | None, now: dt.datetime) -> Order | None:
        transition = {
            "from_status": order.status, "to_status": move.to, "event_type": move.event.DESCRIPTOR.full_name,
            "actor_id": actor.subject if actor else "", "actor_role": actor.role if actor else 0,
            "unit_id": order.current.unit_id, "reason": move.reason, "automatic": move.automatic, "at": now,
        }
        if "current" in move.fields:  # 报单, 分单: the step sent the order to another unit
            transition["to_unit_id"] = move.fields["current"]["unit_id"]
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

    def _run(self, principal: Principal, order_id: str, rule: Callable[[Order, dt.datetime], Move]) -> Order:
        """Loads, applies `rule` (it authorizes and raises when the move is illegal), and commits;
        a lost race re-reads and applies the rule again."""
        def attempt() -> Order | None:
            order, raw = self.load(principal.district_id, order_id)
            now = clock.now()
            return self._commit(order, raw, rule(order, now), principal, now)

        return until_written(CONFLICTS, attempt, "the order kept changing while this request was applied; reload and retry")

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
        return self._run(principal, self.order_id(order_id),
                         lambda order, now: rules.acknowledge(order, principal, now))

    def escalate(self, principal: Principal, order_id: str, reason: str) -> Order:
        order_id, reason = self.id_and_reason(order_id, reason)
        return self._run(principal, order_id,
                         lambda order, now: rules.escalate(order, principal, now, reason, self.lookups))

    def hand_over(self, principal: Principal, req: pb.HandOverOrderRequest) -> Order:
        v = Validator()
        order_id = v.ident("order_id", req.order_id)
        to_unit_id = v.ident("to_unit_id", req.to_unit_id)
        reason = v.text("reason", req.reason, max_len=200)
        v.check()
        return self._run(principal, order_id, lambda order, now: rules.hand_over(order, principal, now, to_unit_id,
                                                                                 reason, self.lookups))

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
        return self._run(principal, order_id, lambda order, now: rules.dispatch(order, principal, now, team_id,
                                                                                volunteer_ids, self.lookups))

    def open(self, principal: Principal, order_id: str) -> Order:
        return self._run(principal, self.order_id(order_id),
                         lambda order, now: rules.open_for_claims(order, principal, now))

    def claim(self, principal: Principal, order_id: str) -> Order:
        order_id = self.order_id(order_id)
        require_role(principal, Role.ROLE_VOLUNTEER)  # refused before the order is read
        try:
            claimed = self._run(principal, order_id, lambda order, now: rules.claim(order, principal, now,
                                                                                    self.lookups))
        except rules.ClaimLost:
            metrics.CLAIMS.labels("lost").inc()
            raise
        metrics.CLAIMS.labels("won").inc()
        return claimed

    # ---- 接单: accepting and declining ----

    def accept(self, principal: Principal, order_id: str) -> Order:
        return self._run(principal, self.order_id(order_id),
                         lambda order, now: rules.accept(order, principal, now, self.lookups))

    def decline(self, principal: Principal, order_id: str, reason: str) -> Order:
        order_id, reason = self.id_and_reason(order_id, reason)
        return self._run(principal, order_id, lambda order, now: rules.decline(order, principal, now, reason))

    # ---- 签到/签退: service on site ----

    def issue_code(self, principal: Principal, order_id: str) -> tuple[str, float]:
        order, _ = self.load(principal.district_id, self.order_id(order_id))
        rules.may_check_in(principal, order)
        return self.codes.issue(rules.CHECKIN_PURPOSE, order.id)

    def check_in(self, principal: Principal, order_id: str, code: str) -> Order:
        v = Validator()
        order_id = v.ident("order_id", order_id)
        code = v.text("code", code, max_len=64)
        v.check()
        return self._run(principal, order_id,
                         lambda order, now: rules.check_in(order, principal, now, code, self.lookups))

    def check_out(self, principal: Principal, req: pb.CheckOutOrderRequest) -> Order:
        v = Validator()
        order_id = v.ident("order_id", req.order_id)
        code = v.text("code", req.code, max_len=64)
        report = v.text("report", req.report, max_len=2000, multiline=True)
        photos = v.ids("photo_asset_ids", list(req.photo_asset_ids), max_count=9)
        v.check()
        return self._run(principal, order_id, lambda order, now: rules.check_out(order, principal, now, code, report,
                                                                                 photos, self.lookups))

    # ---- 时长审核, 评单, closing ----

    def confirm_hours(self, principal: Principal, req: pb.ConfirmOrderHoursRequest) -> Order:
        v = Validator()
        order_id = v.ident("order_id", req.order_id)
        manual = hours_rules.parse_manual(v, req.manual)
        v.check()
        return self._run(principal, order_id,
                         lambda order, now: rules.confirm_hours(order, principal, now, manual, self.lookups))

    def rate(self, principal: Principal, req: pb.RateOrderRequest) -> Order:
        v = Validator()
        order_id = v.ident("order_id", req.order_id)
        comment = v.rating(req.rating, req.comment)
        v.check()
        return self._run(principal, order_id,
                         lambda order, now: rules.rate(order, principal, now, req.rating, comment))

    def close(self, principal: Principal, order_id: str) -> Order:
        return self._run(principal, self.order_id(order_id), lambda order, now: rules.close(order, principal, now))

    # ---- ends before service ----

    def cancel(self, principal: Principal, order_id: str, reason: str) -> Order:
        order_id, reason = self.id_and_reason(order_id, reason, required=False)
        return self._run(principal, order_id, lambda order, now: rules.cancel(order, principal, now, reason))

    def reject(self, principal: Principal, order_id: str, reason: str) -> Order:
        order_id, reason = self.id_and_reason(order_id, reason)
        rules.require_center_admin(principal)  # refused before the order is read
        return self._run(principal, order_id,
                         lambda order, now: rules.reject(order, principal, now, reason, self.lookups))

    # ---- schedulers (run by one replica at a time; each move is still guarded) ----

    def _sweep(self, now: dt.datetime, query: dict, rule: Callable[[Order, dt.datetime], Move | None],
               stored: Callable[[Order], None] | None = None) -> int:
        """Applies `rule` to the due orders `query` finds (a batch at a time); how many moved."""
        moved = 0
        for raw in Order.collection().find(query, {"outbox": 0}).limit(SCHEDULER_BATCH):
            order = Order.from_raw(raw)
            move = rule(order, now)
            if move is not None and self._commit(order, raw, move, None, now) is not None:
                if stored:
                    stored(order)
                moved += 1
        return moved

    def escalate_overdue(self) -> int:
        """四必接: orders whose unit let the acknowledgement deadline pass (order_rules.overdue)."""
        now = clock.now()
        return self._sweep(now, {"ack_due_day": {"$in": recent_days(now)}, "ack_due_at": {"$lt": now},
                            "overdue_flagged": False},
                           lambda order, at: rules.overdue(order, at, self.lookups),
                           lambda order: metrics.SLA_BREACHES.labels(metrics.level_name(order.current.level)).inc())

    def announce_deadlines(self) -> int:
        """Once per unit an order waits at: its deadline is near (a fifth of its time or less is
        left), so its heads can act before the order climbs."""
        now = clock.now()
        return self._sweep(now, {"warn_day": {"$in": recent_days(now)}, "warn_at": {"$lt": now}},
                           rules.deadline_reminder)

    def run_sla(self) -> int:
        """The SLA job: escalate what is overdue, then remind the units whose deadline is near."""
        return self.escalate_overdue() + self.announce_deadlines()

    def close_unrated(self) -> int:
        """Orders whose rating window passed close by themselves: unrated ones, and rated ones
        the unit has not closed."""
        now = clock.now()
        return self._sweep(now, {"close_due_day": {"$in": recent_days(now)}, "close_due_at": {"$lt": now}},
                           rules.close_expired)
