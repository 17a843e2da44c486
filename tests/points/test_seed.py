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
    assert "17 store items" in out and "0 store items" in out
    assert out.count("2 rule documents at the first station") == 1
    rules = stub.GetPointRules(pb.GetPointRulesRequest(), metadata=module_district.as_center(), timeout=5).rules
    assert rules.version == 1 and list(rules.star_threshold_hours) == [100, 300, 600, 1000, 1500]
    assert len(rules.grading.criteria) == 10 and rules.grading.exemplary_min_score == 90
    items = stub.ListStoreItems(pb.ListStoreItemsRequest(unit_id=tree.stations[1].unit_id),
                                metadata=module_district.as_center(), timeout=5).items
    assert len(items) == 8 and {"洗衣液", "大米", "食用油", "毛巾"} <= {i.name for i in items}
    merchants = stub.ListMerchants(pb.ListMerchantsRequest(), metadata=module_district.as_center(), timeout=5)
    assert [m.name for m in merchants.merchants] == ["爱心面包房"]  # once, however often seeded
    perks = stub.GetPerkRules(pb.GetPerkRulesRequest(), metadata=module_district.as_center(), timeout=5).rules
    assert perks.version == 1 and [r.min_star_level for r in perks.rules] == [1, 2, 3]
    first = stub.ListStoreItems(pb.ListStoreItemsRequest(unit_id=tree.stations[0].unit_id),
                                metadata=module_district.as_center(), timeout=5).items
    assert [(i.name, i.stock, i.donated_stock) for i in first if i.merchant_name == "爱心面包房"] == [("全麦面包", 30, 10)]


def test_seed_records_the_demo_volunteers_two_commendations_once(district, points, stub, capsys):
    tree = district.small_tree()
    volunteer = district.volunteer(tree.courtyards[0].unit_id)
    ctx = seed_demo.SeedContext(targets={"points": points.grpc_target}, center_admin=district.as_center(),
                                center_id=district.center_id, institutes=[tree.institute],
                                stations=tree.stations, courtyards=tree.courtyards, volunteers=[volunteer],
                                admin_logins={s.unit_id: f"station{i}-admin" for i, s in enumerate(tree.stations)},
                                registration=_Logins(district))
    seed_points.seed(ctx)
    seed_points.seed(ctx)  # the keys make the second run record nothing new
    assert capsys.readouterr().out.count("2 commendations of the demo volunteer") == 2
    listed = stub.ListCommendations(pb.ListCommendationsRequest(volunteer_id=volunteer.volunteer_id),
                                    metadata=district.as_center(), timeout=5).commendations
    assert [(c.title, c.issuer, c.level, c.revoked) for c in listed] == [
        ("优秀志愿者", "区文明办", pb.COMMENDATION_LEVEL_DISTRICT, False),
        ("学雷锋志愿服务先进个人", "市文明办", pb.COMMENDATION_LEVEL_CITY, False)]
