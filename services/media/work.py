"""Orders and activities as media needs them, kept from ordering's events: who may see the
photos linked to an order (its resident, its volunteers, admins of the units on its way), which
unit an activity belongs to, and which photos a completion report names as proof of service.

Every handler is idempotent: snapshots are applied only when newer (aggregate version), and an
asset is linked to an order only once (the link is guarded by "not linked yet")."""

from __future__ import annotations

from collections.abc import Callable

from pymongo import ASCENDING
from pymongo.database import Database

from services.common.auth import Principal, Role
from services.common.consumer import ConsumedEvent, Outcome
from services.common.readmodels import upsert_if_newer
from wenming.ordering.v1 import events_pb2 as ordering_events

ORDER_SNAPSHOT = "wenming.ordering.v1.OrderSnapshot"
ACTIVITY_SNAPSHOT = "wenming.ordering.v1.ActivitySnapshot"


def _snapshot_events(field: str, snapshot_type: str) -> list[str]:
    """Every ordering event type carrying `field` of `snapshot_type`."""
    return [m.full_name for m in ordering_events.DESCRIPTOR.message_types_by_name.values()
            if field in m.fields_by_name and m.fields_by_name[field].message_type is not None
            and m.fields_by_name[field].message_type.full_name == snapshot_type]


class WorkRefs:
    def __init__(self, db: Database):
        self.orders = db["order_refs"]
        self.activities = db["activity_refs"]

    def ensure_indexes(self) -> None:
        self.orders.create_index([("district_id", ASCENDING), ("unit_ids", ASCENDING)])
        self.activities.create_index([("district_id", ASCENDING), ("unit_ids", ASCENDING)])

    # ---- queries ----

    def order(self, district_id: str, order_id: str) -> dict | None:
        return self.orders.find_one({"_id": order_id, "district_id": district_id})

    def activity(self, district_id: str, activity_id: str) -> dict | None:
        return self.activities.find_one({"_id": activity_id, "district_id": district_id})

    @staticmethod
    def is_order_party(principal: Principal, order: dict) -> bool:
        """The order's resident, one of its volunteers, an admin of a unit on its way, or a service."""
        if principal.district_id != order["district_id"]:
            return False
        return (principal.role == Role.ROLE_SERVICE or principal.subject == order["resident_id"]
                or principal.subject in order["volunteer_ids"]
                or (principal.is_admin and principal.unit_id in order["unit_ids"]))

    @staticmethod
    def manages_activity(principal: Principal, activity: dict) -> bool:
        return principal.district_id == activity["district_id"] and (
            principal.role == Role.ROLE_SERVICE or (principal.is_admin and principal.unit_id in activity["unit_ids"]))

    # ---- event handlers ----

    def handlers(self, link_completion_photos: Callable[[str, str, list[str], str], None]) -> dict:
        """`link_completion_photos(district_id, order_id, asset_ids, actor_id)` links the photos of a
        completion report to the order (idempotently)."""

        def order_completed(event: ConsumedEvent) -> Outcome:
            outcome = self._order(event)
            envelope = event.envelope
            link_completion_photos(envelope.district_id, event.payload.order.order_id,
                                   list(event.payload.photo_asset_ids), envelope.actor_id)
            return outcome

        handlers = {name: self._order for name in _snapshot_events("order", ORDER_SNAPSHOT)}
        handlers |= {name: self._activity for name in _snapshot_events("activity", ACTIVITY_SNAPSHOT)}
        handlers[ordering_events.OrderCompleted.DESCRIPTOR.full_name] = order_completed
        return handlers

    def _order(self, event: ConsumedEvent) -> Outcome:
        order = event.payload.order
        if not order.order_id:
            raise ValueError("order event without an order id")
        return upsert_if_newer(self.orders, order.order_id, event.envelope.aggregate_version, {
            "district_id": event.envelope.district_id, "resident_id": order.resident_id,
            "volunteer_ids": list(order.volunteer_ids), "status": order.status,
            "unit_ids": sorted(set(order.origin_courtyard.path) | set(order.current_unit.path))})

    def _activity(self, event: ConsumedEvent) -> Outcome:
        activity = event.payload.activity
        if not activity.activity_id:
            raise ValueError("activity event without an activity id")
        return upsert_if_newer(self.activities, activity.activity_id, event.envelope.aggregate_version, {
            "district_id": event.envelope.district_id, "unit_ids": list(activity.unit.path),
            "status": activity.status})
