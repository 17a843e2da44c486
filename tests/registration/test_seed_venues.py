"""The `make run` seed gives every institute and station its venue and rooms, and books the coming
days (run here on a small district through registration's API)."""

from __future__ import annotations

import datetime as dt

import seed_demo  # infra/local is on the path (tests.support.stack)
import seed_venues
from services.common.clock import CHINA
from tests.support.registration import SeedLogins, admin_logins
from wenming.registration.v1 import registration_pb2 as reg


def test_the_demo_seed_builds_venues_rooms_and_bookings(district, capsys):
    tree = district.small_tree()
    ctx = seed_demo.SeedContext(targets={}, center_admin=district.as_center(), center_id=district.center_id,
                                institutes=[tree.institute], stations=tree.stations, courtyards=tree.courtyards,
                                admin_logins=admin_logins(tree), registration=SeedLogins(district))
    seed_venues.seed(ctx)
    assert "venues: 4 with 8 rooms, 10 bookings" in capsys.readouterr().out

    venues = district.stub.ListVenues(reg.ListVenuesRequest(), metadata=district.as_center(), timeout=10).venues
    assert sorted(reg.VenueKind.Name(v.kind) for v in venues) == [
        "VENUE_KIND_PRACTICE_INSTITUTE", "VENUE_KIND_PRACTICE_STATION", "VENUE_KIND_PRACTICE_STATION",
        "VENUE_KIND_SQUARE"]
    assert all(v.managers for v in venues)
    months = sorted({(dt.datetime.now(CHINA) + dt.timedelta(days=d)).strftime("%Y-%m") for d in (0, 14)})
    usage = district.stub.GetVenueUsage(reg.GetVenueUsageRequest(from_month=months[0], to_month=months[-1]),
                                        metadata=district.as_center(), timeout=10)
    assert sum(m.bookings for m in usage.total) == 10
    assert sum(m.booked_minutes for m in usage.total) == 2 * (2 + 2 + 2 + 3 + 3) * 60
