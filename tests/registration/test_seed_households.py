"""The `make run` seed gives the demo courtyard three households with their members and ratings:
one 十星文明户 this year, one of eight stars, one of six after ten last year (run here on a small
district through registration's API)."""

from __future__ import annotations

import datetime as dt

import seed_demo  # infra/local is on the path (tests.support.stack)
import seed_households
from services.common.clock import CHINA
from tests.support.registration import SeedLogins, admin_logins
from wenming.registration.v1 import registration_pb2 as reg


def test_the_demo_seed_builds_rated_households_in_the_demo_courtyard(district, capsys):
    tree = district.small_tree()
    yard = tree.courtyards[0]
    residents = [district.resident(yard.unit_id, name=name)[0] for name in ("张守礼", "李守信")]
    ctx = seed_demo.SeedContext(targets={}, center_admin=district.as_center(), center_id=district.center_id,
                                institutes=[tree.institute], stations=tree.stations, courtyards=tree.courtyards,
                                residents=[(r, "") for r in residents], admin_logins=admin_logins(tree),
                                registration=SeedLogins(district))
    seed_households.seed(ctx)
    assert "households: 3 in 测试小院00, 5 yearly ratings" in capsys.readouterr().out

    this_year = dt.datetime.now(CHINA).year
    admin = ctx.login_admin(yard.unit_id)
    listed = district.stub.ListHouseholds(reg.ListHouseholdsRequest(), metadata=admin, timeout=10).households
    assert [(h.name, len(h.members), h.rating.stars_awarded, h.rating.all_stars) for h in listed] == [
        ("张家", 2, 10, True), ("李家", 3, 8, False), ("王家", 2, 6, False)]
    assert listed[0].members[0].resident_id == residents[0].resident_id
    last_year = district.stub.ListHouseholds(reg.ListHouseholdsRequest(year=this_year - 1), metadata=admin,
                                             timeout=10).households
    assert [h.rating.stars_awarded for h in last_year] == [9, 0, 10]
