"""Pure rules of the ordering domain (no servers): star levels, wanted time slots, queue order."""

from __future__ import annotations

import datetime as dt

from services.ordering.matching import stars_for, wanted_slot
from services.ordering.orders import queue_key
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import types_pb2

S = types_pb2.OrderStatus


def test_stars_follow_the_national_hour_thresholds():
    assert [stars_for(hours * 60) for hours in (0, 99, 100, 299, 300, 600, 1000, 1499, 1500, 5000)] == \
        [0, 0, 1, 1, 2, 3, 4, 4, 5, 5]


def test_wanted_time_is_read_in_china_standard_time():
    # 2026-11-28 is a Saturday; 01:30 UTC is 09:30 in Beijing, 10:30 UTC is 18:30
    assert wanted_slot(dt.datetime(2026, 11, 28, 1, 30, tzinfo=dt.UTC)) == (c.WEEKDAY_SATURDAY, c.DAY_PERIOD_MORNING)
    assert wanted_slot(dt.datetime(2026, 11, 28, 5, 0, tzinfo=dt.UTC)) == (c.WEEKDAY_SATURDAY, c.DAY_PERIOD_AFTERNOON)
    assert wanted_slot(dt.datetime(2026, 11, 28, 10, 30, tzinfo=dt.UTC)) == (c.WEEKDAY_SATURDAY, c.DAY_PERIOD_EVENING)
    assert wanted_slot(dt.datetime(2026, 11, 28, 17, 0, tzinfo=dt.UTC)) == (c.WEEKDAY_SUNDAY, c.DAY_PERIOD_MORNING)


def test_the_queue_puts_waiting_orders_first_by_deadline_then_the_rest_by_age():
    due = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
    placed = due - dt.timedelta(hours=3)
    keys = {
        "late_waiting": queue_key({"_id": "ord_B", "status": S.ORDER_STATUS_ESCALATED, "placed_at": placed,
                                   "ack_due_at": due + dt.timedelta(hours=1)}),
        "soon_waiting": queue_key({"_id": "ord_C", "status": S.ORDER_STATUS_PLACED, "ack_due_at": due,
                                   "placed_at": placed}),
        # by age: the time each was placed, whatever its id says
        "old_acknowledged": queue_key({"_id": "ord_E", "status": S.ORDER_STATUS_ACKNOWLEDGED, "ack_due_at": None,
                                       "placed_at": placed - dt.timedelta(days=2)}),
        "new_dispatched": queue_key({"_id": "ord_A", "status": S.ORDER_STATUS_DISPATCHED, "placed_at": placed}),
    }
    assert sorted(keys, key=keys.get) == ["soon_waiting", "late_waiting", "old_acknowledged", "new_dispatched"]
