"""Stored documents → API messages."""

from __future__ import annotations

from services.common.events import to_timestamp
from wenming.common.v1 import common_pb2
from wenming.points.v1 import points_pb2 as pb

from . import grading_rules
from . import rules as r
from .directory import Holder
from .perk_rules import Price


def account_msg(account: dict, holder: Holder | None) -> pb.Account:
    return pb.Account(
        account_id=account["_id"], district_id=account["district_id"], kind=account["kind"],
        volunteer_number=holder.volunteer_number if holder else "",
        verified_minutes=account["verified_minutes"], manual_minutes=account["manual_minutes"],
        training_minutes=account["training_minutes"], points=account["points"], star_level=account["star_level"],
        star_history=[pb.StarGrant(level=g["level"], granted_at=to_timestamp(g["granted_at"]),
                                   counted_minutes=g["counted_minutes"], threshold_minutes=g["threshold_minutes"])
                      for g in account.get("star_history", [])],
        next_points_expiry=to_timestamp(account.get("next_expiry_at")), version=account["version"])


def entry_msg(entry: dict) -> pb.LedgerEntry:
    cause = entry["cause"]
    return pb.LedgerEntry(
        entry_id=entry["_id"], account_id=entry["account_id"], account_kind=entry["account_kind"], book=entry["book"],
        kind=entry["kind"], amount=entry["amount"], cause_type=cause["type"], cause_id=cause["id"],
        cause_event_id=cause["event_id"], title=cause["title"], category=cause["category"],
        recorded_by_unit_id=entry["recorded_by_unit_id"], reason=entry["reason"], actor_id=entry["actor_id"],
        reverses_entry_id=entry["reverses"], occurred_at=to_timestamp(entry["occurred_at"]),
        recorded_at=to_timestamp(entry["recorded_at"]), expires_at=to_timestamp(entry.get("expires_at")))


def rules_msg(rules: r.Rules) -> pb.PointRules:
    return pb.PointRules(
        base_points_per_hour=rules.base_points_per_hour,
        category_coefficients=[pb.CategoryCoefficient(category=c, percent=p)
                               for c, p in sorted(rules.category_percent.items())],
        attendance_points=rules.attendance_points, rating_given_points=rules.rating_given_points,
        rating_received_points=list(rules.rating_received_points),
        training_points_per_hour=rules.training_points_per_hour, points_validity_years=rules.points_validity_years,
        star_threshold_hours=list(rules.star_threshold_hours), stars_count_manual_hours=rules.stars_count_manual_hours,
        stars_count_training_hours=rules.stars_count_training_hours, exemplary=r.thresholds_msg(rules.exemplary),
        standard=r.thresholds_msg(rules.standard), version=rules.version, updated_at=to_timestamp(rules.updated_at),
        updated_by=rules.updated_by, grading=grading_rules.scheme_msg(rules.grading))


def _unit(doc: dict) -> common_pb2.UnitRef:
    return common_pb2.UnitRef(unit_id=doc["unit_id"], level=doc["unit_level"], name=doc["unit_name"],
                              path=doc["unit_path"])


def item_msg(item: dict, price: Price | None = None, star_level: int = 0) -> pb.StoreItem:
    """An item; with `price` (a volunteer's), their price and whether their `star_level` reaches it."""
    msg = pb.StoreItem(item_id=item["_id"], district_id=item["district_id"], unit=_unit(item), name=item["name"],
                       description=item["description"], price_points=item["price_points"], stock=item["stock"],
                       active=item["active"], version=item["version"], created_at=to_timestamp(item["created_at"]),
                       merchant_id=item.get("merchant_id", ""), merchant_name=item.get("merchant_name", ""),
                       min_star_level=item.get("min_star_level", 0), donated_stock=item.get("donated_stock", 0))
    if price is not None:
        msg.your_price_points = price.points
        msg.your_discount_percent = price.discount_percent
        msg.reserved_above_you = star_level < msg.min_star_level
    return msg


def redemption_msg(r: dict) -> pb.Redemption:
    return pb.Redemption(
        redemption_id=r["_id"], district_id=r["district_id"], account_id=r["account_id"],
        account_kind=r["account_kind"], item_id=r["item_id"], item_name=r["item_name"], unit=_unit(r),
        quantity=r["quantity"], cost_points=r["cost_points"], status=r["status"],
        code=r["code"] if r["status"] in (pb.REDEMPTION_STATUS_COMPLETED, pb.REDEMPTION_STATUS_COLLECTED) else "",
        failure_reason=r["failure_reason"], refund_reason=r["refund_reason"],
        created_at=to_timestamp(r["created_at"]), completed_at=to_timestamp(r.get("completed_at")),
        collected_at=to_timestamp(r.get("collected_at")), refunded_at=to_timestamp(r.get("refunded_at")),
        list_price_points=r.get("list_price_points", 0), discount_percent=r.get("discount_percent", 0))
