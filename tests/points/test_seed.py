"""The demo seed for points runs against the real services and is idempotent."""

from __future__ import annotations

import seed_demo  # infra/local (on the path through tests.support.stack)
import seed_points

from tests.support.grpc_helpers import bearer
from wenming.points.v1 import points_pb2 as pb


class _Logins:
    """What SeedContext needs of the registration seeder, for a test district."""

    def __init__(self, district):
        self.district = district

    def login(self, kind: int, login: str):
        return bearer(self.district.login(kind, login)), None


def test_seed_sets_rules_and_stocks_every_station(module_district, points, stub, capsys):
    tree = module_district.small_tree()
    ctx = seed_demo.SeedContext(targets={"points": points.grpc_target}, center_admin=module_district.as_center(),
                                center_id=module_district.center_id, institutes=[tree.institute],
                                stations=tree.stations, courtyards=tree.courtyards,
                                admin_logins={s.unit_id: f"station{i}-admin" for i, s in enumerate(tree.stations)},
                                registration=_Logins(module_district))
    seed_points.seed(ctx)
    seed_points.seed(ctx)  # a second run adds nothing
    out = capsys.readouterr().out
    assert "16 store items" in out and "0 store items" in out
    assert out.count("2 rule documents at the first station") == 1
    rules = stub.GetPointRules(pb.GetPointRulesRequest(), metadata=module_district.as_center(), timeout=5).rules
    assert rules.version == 1 and list(rules.star_threshold_hours) == [100, 300, 600, 1000, 1500]
    assert len(rules.grading.criteria) == 10 and rules.grading.exemplary_min_score == 90
    items = stub.ListStoreItems(pb.ListStoreItemsRequest(unit_id=tree.stations[1].unit_id),
                                metadata=module_district.as_center(), timeout=5).items
    assert len(items) == 8 and {"洗衣液", "大米", "食用油", "毛巾"} <= {i.name for i in items}
