"""The roll-up of districts (docs/rollup.md) without a network: a region's configuration, who may
read a region, which topics feed it, and that a region's month adds its districts' months up
exactly as each district's own report counts them."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from services.common import monthly_rules as rules
from services.common.auth import Principal
from services.common.clock import CHINA
from services.common.errors import PermissionDenied
from services.common.monthly_rules import Activity, Figures, Hours, Order, Team, Volunteer
from services.rollup.regions import parse_regions
from wenming.common.v1 import common_pb2 as c

CITY = {"region_id": "d-wuwei", "name": "武威市", "districts": [
    {"district_id": "d-liangzhou", "name": "凉州区", "kafka_prefix": "liangzhou."},
    {"district_id": "d-gulang", "name": "古浪县", "kafka_prefix": "gulang."}]}
PROVINCE = {"region_id": "d-gansu", "name": "甘肃省", "districts": [
    *CITY["districts"], {"district_id": "d-chengguan", "name": "城关区", "kafka_prefix": "lanzhou."}]}
REGIONS = parse_regions(json.dumps({"regions": [CITY, PROVINCE]}))
NOVEMBER = rules.month_bounds(2026, 11)


def admin(district: str, level: int = c.UNIT_LEVEL_CENTER, role: int = c.ROLE_UNIT_ADMIN) -> Principal:
    return Principal(subject="acc_1", district_id=district, role=role, unit_id="unit_1", unit_level=level,
                     unit_path=("unit_1",))


def test_a_regions_文明办_reads_its_own_region_named_or_not():
    assert REGIONS.readable_by(admin("d-wuwei"), "").name == "武威市"
    assert REGIONS.readable_by(admin("d-wuwei"), "d-wuwei").district_ids == ["d-liangzhou", "d-gulang"]
    assert REGIONS.readable_by(admin("d-gansu"), "").district_ids == ["d-liangzhou", "d-gulang", "d-chengguan"]


@pytest.mark.parametrize("principal, region_id", [
    (admin("d-liangzhou"), ""),                          # a district's center admin
    (admin("d-liangzhou"), "d-wuwei"),                   # … naming the city that holds the district
    (admin("d-wuwei"), "d-gansu"),                       # a city's 文明办 asking for its province
    (admin("d-gansu"), "d-wuwei"),                       # and the province for a city (its own region only)
    (admin("d-wuwei", level=c.UNIT_LEVEL_INSTITUTE), ""),  # below the account district's center
    (admin("d-wuwei", role=c.ROLE_INSPECTOR), ""),
    (admin("d-wuwei", role=c.ROLE_VOLUNTEER), ""),
    (admin("d-wuwei", role=c.ROLE_SERVICE), ""),
])
def test_everyone_else_is_refused(principal, region_id):
    with pytest.raises(PermissionDenied, match="市、省文明办"):
        REGIONS.readable_by(principal, region_id)


def test_the_topics_are_each_release_s_once_and_a_release_speaks_only_for_its_districts():
    assert REGIONS.topics() == sorted(f"{prefix}wenming.{service}.v1.events" for prefix in ("gulang.", "lanzhou.", "liangzhou.")
                                      for service in ("registration", "ordering", "points"))
    assert REGIONS.hosts("gulang.wenming.ordering.v1.events", "d-gulang")
    assert not REGIONS.hosts("liangzhou.wenming.ordering.v1.events", "d-gulang")  # another release's district
    assert not REGIONS.hosts("gulang.wenming.ordering.v1.events", "d-elsewhere")   # not in any region
    assert not REGIONS.hosts("gulang.wenming.media.v1.events", "d-gulang")


@pytest.mark.parametrize("config, problem", [
    ({"regions": []}, "no region"),
    ({"regions": [CITY, CITY]}, "appears twice"),
    ({"regions": [{**CITY, "districts": []}]}, "at least one district"),
    ({"regions": [{**CITY, "districts": [{"district_id": "d-wuwei", "name": "自己"}]}]}, "also a district"),
    ({"regions": [CITY, {"region_id": "d-gulang", "name": "古浪", "districts": CITY["districts"][:1]}]}, "also a district"),
    ({"regions": [{**CITY, "districts": [{"district_id": "d-x", "name": "某区", "kafka_prefix": "no spaces"}]}]},
     "kafka_prefix"),
    ({"regions": [CITY, {**PROVINCE, "districts": [{**CITY["districts"][0], "kafka_prefix": "other."}]}]},
     "two different kafka_prefix"),
    ({"regions": [{"name": "武威市"}]}, "expected JSON"),
])
def test_a_wrong_configuration_is_named(config, problem):
    with pytest.raises(ValueError, match=problem):
        parse_regions(json.dumps(config))


def at(day: int, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, 12, tzinfo=CHINA)


# each district's records as points keeps them, under the district's own units (center → …)
LIANGZHOU = dict(volunteers=[Volunteer(["lz", "a"], at(3), 90), Volunteer(["lz", "b"], at(3, 10), 0),
                             Volunteer(["lz"], None, 0), Volunteer(["lz", "a"], at(2, 12), 30)],
                 teams=[Team(["lz", "a"], at(2, 9)), Team(["lz"], at(5, 12))],
                 activities=[Activity(["lz", "a", "x"], c.SERVICE_CATEGORY_LECTURE_THEORY, 12)],
                 orders=[Order(["lz", "b", "y"], c.SERVICE_CATEGORY_CARE_FOR_OTHERS, True, 5),
                         Order(["lz", "b", "y"], c.SERVICE_CATEGORY_CARE_FOR_OTHERS, False, 0)],
                 hours=[Hours(["lz", "a"], c.SERVICE_CATEGORY_LECTURE_THEORY, 90, "v1"),
                        Hours(["lz", "a"], 0, 30, "v4"), Hours(["lz", "a"], 0, -30, "v4")])
GULANG = dict(volunteers=[Volunteer(["gl", "c"], at(20), 45)], teams=[],
              activities=[Activity(["gl"], c.SERVICE_CATEGORY_CARE_FOR_NATURE, 30)],
              orders=[Order(["gl", "c"], c.SERVICE_CATEGORY_CARE_FOR_OTHERS, True, 3),
                      Order(["gl", "c"], c.SERVICE_CATEGORY_CARE_FOR_OTHERS, True, 4)],
              hours=[Hours(["gl", "c"], c.SERVICE_CATEGORY_CARE_FOR_OTHERS, 45, "v9")])


def _at_region(records: dict, district: str) -> dict:
    """The same records as the roll-up files them: at (region, district)."""
    return {kind: [type(r)(("wuwei", district), *list(vars(r).values())[1:]) for r in rows]
            for kind, rows in records.items()}


def test_a_districts_row_is_its_own_report_of_its_center_and_the_region_is_their_sum():
    own = {d: rules.tally(center, [], NOVEMBER, [], **records).total
           for d, center, records in (("d-liangzhou", "lz", LIANGZHOU), ("d-gulang", "gl", GULANG))}
    assert own["d-liangzhou"] == Figures(volunteers_registered=3, volunteers_new=1, volunteers_active=1, teams=1,
                                         activities_held=1, activity_participants=12, orders_placed=2,
                                         orders_completed=1, service_minutes=90, ratings=1, satisfied_ratings=1,
                                         rating_points=5)
    merged = {kind: _at_region(LIANGZHOU, "d-liangzhou")[kind] + _at_region(GULANG, "d-gulang")[kind]
              for kind in LIANGZHOU}
    region = rules.tally("wuwei", ["d-liangzhou", "d-gulang"], NOVEMBER, [], **merged)
    assert region.units["d-liangzhou"] == own["d-liangzhou"] and region.units["d-gulang"] == own["d-gulang"]
    added = Figures()
    for figures in own.values():
        added.add(figures)
    assert region.total == added
    assert region.total.satisfaction_centi == 400  # (5 + 3 + 4) / 3 ratings: the average of all, not of averages
