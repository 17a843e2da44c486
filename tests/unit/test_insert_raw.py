"""Aggregate.insert_raw writes what Aggregate.insert would: the stored form with the model's
defaults, without converting through mongoengine per call (services/common/documents.py)."""

from __future__ import annotations

import datetime as dt

from services.ordering.models import Order


def test_the_stored_form_with_defaults_is_what_insert_would_write():
    now = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    unit = {"unit_id": "unit_y", "level": 4, "name": "幸福小院", "path": ["unit_c", "unit_i", "unit_s", "unit_y"]}
    raw = {"_id": "ord_1", "district_id": "d1", "item_id": "item_1", "item_name": "助老理发", "wish": False,
           "category": 3, "handling_level": 4, "required_skills": [5], "required_certifications": [],
           "points_rule": "", "planned_minutes": 45, "status": 1, "origin": unit, "current": unit,
           "routed_past": [], "resident_id": "res_1", "placed_on_behalf": False, "placed_by": "res_1",
           "note": "上门", "contact_masked": "", "urgent": False, "wanted_at": None, "arrived_at": now,
           "ack_due_at": now, "warn_at": now, "placed_at": now, "queue_key": "k",
           "trail": [{"from_status": 0, "to_status": 1, "event_type": "x", "actor_id": "res_1", "actor_role": 3,
                      "unit_id": "unit_y", "reason": "", "automatic": False, "at": now}]}
    converted = Order.from_raw(dict(raw)).to_mongo().to_dict()
    for generated in ("outbox", "outbox_pending", "version"):  # insert_with_events sets them
        converted.pop(generated)
    assert Order.stored_form(raw) == converted
    # each document gets defaults of its own: a list filled in one order is not another's
    first, second = Order.stored_form(raw), Order.stored_form(raw)
    first["hours"].append({"volunteer_id": "v"})
    assert second["hours"] == []
