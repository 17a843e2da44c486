"""Households (户) and 十星文明户 in memory: what a household, a star list, a year and a rating may
say (table-driven), who may keep and read a household, who may join one, how a rating changes
and how a year adds up against the district's stars; the address as shown."""

from __future__ import annotations

import datetime as dt

import pytest

from services.common.auth import Principal, Role
from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.common.pii import mask_address
from services.common.validation import Validator
from services.registration import household_rules as rules
from wenming.common.v1 import common_pb2
from wenming.registration.v1 import registration_pb2 as pb

NOW = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=1)
YARD_PATH = ("unt_c", "unt_i", "unt_s1", "unt_y1")
STARS = list(rules.DEFAULT_STARS)


def admin(unit_id: str) -> Principal:
    return Principal(subject=f"adm_{unit_id}", district_id="d1", role=Role.ROLE_UNIT_ADMIN, unit_id=unit_id,
                     display_name=f"{unit_id}管理员")


def resident(subject: str = "res_1") -> Principal:
    return Principal(subject=subject, district_id="d1", role=Role.ROLE_RESIDENT)


def test_the_default_stars_are_the_ten_of_shi_xing_wen_ming_hu():
    assert len(rules.DEFAULT_STARS) == 10 == len(set(rules.DEFAULT_STARS))
    assert rules.DEFAULT_STARS[0] == "爱国守法星" and "孝老爱亲星" in rules.DEFAULT_STARS
    v = Validator()
    assert rules.validate_star_list(v, STARS) == STARS and v.violations == []


# ---- input ----

def test_a_well_formed_household_passes_trimmed():
    v = Validator()
    asked = rules.validate_new(v, "unt_y1", " 张家 ", " 幸福路12号 ", "hh-1")
    assert v.violations == [] and asked == rules.NewHousehold("unt_y1", "张家", "幸福路12号", "hh-1")
    v = Validator()
    assert rules.validate_new(v, "unt_y1", "李家", "", "hh-2").address == "" and v.violations == []


@pytest.mark.parametrize(("unit_id", "name", "address", "key", "field"), [
    ("", "张家", "", "k", "unit_id"),
    ("unt y1!", "张家", "", "k", "unit_id"),
    ("unt_y1", "", "", "k", "name"),
    ("unt_y1", "张" * 31, "", "k", "name"),
    ("unt_y1", "张\n家", "", "k", "name"),
    ("unt_y1", "张家", "路" * 121, "k", "address"),
    ("unt_y1", "张家", "", "", "idempotency_key"),
    ("unt_y1", "张家", "", "no spaces", "idempotency_key"),
])
def test_a_household_refuses_each_bad_field_by_name(unit_id, name, address, key, field):
    v = Validator()
    rules.validate_new(v, unit_id, name, address, key)
    assert [f for f, _ in v.violations] == [field]


@pytest.mark.parametrize(("names", "field"), [
    ([], "stars"),
    ([f"第{i}星" for i in range(21)], "stars"),
    (["爱国守法星", "星"], "stars[1]"),                     # under 2 characters
    (["爱国守法星", "很" * 13], "stars[1]"),                # over 12
    (["爱国守法星", "诚信友善星", "爱国守法星"], "stars[2]"),  # twice
])
def test_a_district_star_list_refuses_what_cannot_be_shown(names, field):
    v = Validator()
    rules.validate_star_list(v, names)
    assert [f for f, _ in v.violations] == [field]


@pytest.mark.parametrize(("year", "required", "ok"), [
    (2026, True, True), (2015, True, True), (2014, True, False), (2027, True, False),
    (0, True, False), (0, False, True),
])
def test_a_rating_year_runs_from_2015_to_this_year(year, required, ok):
    v = Validator()
    got = rules.validate_year(v, year, 2026, required=required)
    assert (v.violations == []) is ok
    if ok:
        assert got == (year or 2026)


def test_decisions_name_district_stars_once_each_with_a_short_note():
    v = Validator()
    decided = rules.validate_decisions(v, [pb.StarDecision(star="爱国守法星", awarded=True, note=" 带头守法 "),
                                          pb.StarDecision(star="清洁卫生星")], STARS)
    assert v.violations == []
    assert decided == [rules.Decision("爱国守法星", True, "带头守法"), rules.Decision("清洁卫生星", False, "")]


@pytest.mark.parametrize(("decisions", "field"), [
    ([], "decisions"),
    ([pb.StarDecision(star="发财星", awarded=True)], "decisions[0].star"),
    ([pb.StarDecision(star="爱国守法星"), pb.StarDecision(star="爱国守法星")], "decisions[1].star"),
    ([pb.StarDecision(star="爱国守法星", note="好" * 101)], "decisions[0].note"),
])
def test_decisions_refuse_unknown_repeated_or_long_ones(decisions, field):
    v = Validator()
    rules.validate_decisions(v, decisions, STARS)
    assert [f for f, _ in v.violations] == [field]


def test_more_decisions_than_stars_are_refused():
    v = Validator()
    rules.validate_decisions(v, [pb.StarDecision(star="甲星"), pb.StarDecision(star="乙星")], ["甲星"])
    assert [f for f, _ in v.violations] == ["decisions"]


# ---- who may do what ----

@pytest.mark.parametrize(("level", "ok"), [
    (common_pb2.UNIT_LEVEL_COURTYARD, True), (common_pb2.UNIT_LEVEL_STATION, True),
    (common_pb2.UNIT_LEVEL_INSTITUTE, False), (common_pb2.UNIT_LEVEL_CENTER, False),
])
def test_households_live_at_courtyards_and_stations(level, ok):
    if ok:
        rules.require_household_unit(level)
    else:
        with pytest.raises(InvalidArgument):
            rules.require_household_unit(level)


@pytest.mark.parametrize(("principal", "ok"), [
    (admin("unt_y1"), True),    # the courtyard's own admin
    (admin("unt_s1"), True),    # its station's
    (admin("unt_c"), True),     # the center's
    (admin("unt_y2"), False),   # another courtyard's
    (admin("unt_s2"), False),   # another station's
    (resident(), False),
    (Principal(subject="vol_1", district_id="d1", role=Role.ROLE_VOLUNTEER), False),
    (Principal(subject="svc", district_id="d1", role=Role.ROLE_SERVICE), False),
])
def test_admins_of_the_unit_or_above_keep_a_household_and_nobody_else(principal, ok):
    if ok:
        rules.require_keeper(principal, YARD_PATH)
    else:
        with pytest.raises(PermissionDenied):
            rules.require_keeper(principal, YARD_PATH)


@pytest.mark.parametrize(("principal", "callers_household", "ok"), [
    (resident(), "hh_1", True),       # their own
    (resident(), "hh_2", False),      # another one's
    (resident(), "", False),          # in none
    (admin("unt_s1"), "", True),
    (admin("unt_y2"), "", False),
])
def test_a_resident_reads_only_their_own_household(principal, callers_household, ok):
    if ok:
        rules.require_reader(principal, YARD_PATH, "hh_1", callers_household)
    else:
        with pytest.raises(PermissionDenied):
            rules.require_reader(principal, YARD_PATH, "hh_1", callers_household)


def test_a_resident_joins_at_most_one_household_of_their_courtyard_or_station():
    assert rules.check_new_member("hh_1", "unt_y1", YARD_PATH, "", 0) is True
    assert rules.check_new_member("hh_1", "unt_s1", YARD_PATH, "", 3) is True   # a station's household
    assert rules.check_new_member("hh_1", "unt_y1", YARD_PATH, "hh_1", 3) is False  # already a member
    with pytest.raises(FailedPrecondition, match="已是另一户的成员"):
        rules.check_new_member("hh_1", "unt_y1", YARD_PATH, "hh_2", 0)
    with pytest.raises(FailedPrecondition, match="不住在"):
        rules.check_new_member("hh_1", "unt_y2", YARD_PATH, "", 0)
    with pytest.raises(FailedPrecondition, match="最多"):
        rules.check_new_member("hh_1", "unt_y1", YARD_PATH, "", rules.MAX_MEMBERS)


# ---- ratings ----

def decide(*pairs) -> list[rules.Decision]:
    return [rules.Decision(star, awarded, note) for star, awarded, note in pairs]


def test_a_rating_records_who_decided_each_star_and_when():
    ratings, changed = rules.rate([], 2026, decide(("爱国守法星", True, "带头守法"), ("清洁卫生星", False, "")),
                                  "adm_1", "小院管理员", NOW)
    assert [c["star"] for c in changed] == ["爱国守法星", "清洁卫生星"]
    assert ratings == [{"year": 2026, "stars": changed}]
    assert changed[0] == {"star": "爱国守法星", "awarded": True, "note": "带头守法", "decided_by": "adm_1",
                          "decided_by_name": "小院管理员", "decided_at": NOW}


def test_a_repeated_decision_changes_nothing_and_keeps_the_first_recorder():
    ratings, _ = rules.rate([], 2026, decide(("爱国守法星", True, "")), "adm_1", "甲", NOW)
    again, changed = rules.rate(ratings, 2026, decide(("爱国守法星", True, "")), "adm_2", "乙", LATER)
    assert changed == [] and again == ratings


def test_a_changed_decision_replaces_the_star_and_leaves_the_others():
    ratings, _ = rules.rate([], 2026, decide(("爱国守法星", True, ""), ("诚信友善星", True, "")), "adm_1", "甲", NOW)
    after, changed = rules.rate(ratings, 2026, decide(("诚信友善星", False, "有失信记录")), "adm_2", "乙", LATER)
    stars = {s["star"]: s for s in rules.year_stars(after, 2026)}
    assert changed == [stars["诚信友善星"]] and stars["诚信友善星"]["decided_by"] == "adm_2"
    assert stars["爱国守法星"]["decided_at"] == NOW


def test_years_are_kept_apart_in_order():
    ratings, _ = rules.rate([], 2026, decide(("爱国守法星", True, "")), "adm_1", "甲", NOW)
    ratings, _ = rules.rate(ratings, 2025, decide(("清洁卫生星", True, "")), "adm_1", "甲", NOW)
    assert [r["year"] for r in ratings] == [2025, 2026]
    assert rules.rating_of(ratings, 2025, STARS).awarded == 1 and rules.rating_of(ratings, 2024, STARS).awarded == 0


def test_a_year_adds_up_against_the_district_stars_and_all_ten_is_a_ten_star_household():
    ratings, _ = rules.rate([], 2026, decide(*((star, True, "") for star in STARS[:9])), "adm_1", "甲", NOW)
    nine = rules.rating_of(ratings, 2026, STARS)
    assert (nine.awarded, nine.total, nine.all_stars) == (9, 10, False)
    assert [s["star"] for s in nine.stars] == STARS and nine.stars[9]["awarded"] is False
    ratings, _ = rules.rate(ratings, 2026, decide((STARS[9], True, "")), "adm_1", "甲", NOW)
    ten = rules.rating_of(ratings, 2026, STARS)
    assert (ten.awarded, ten.total, ten.all_stars) == (10, 10, True)


def test_a_star_the_district_dropped_no_longer_counts():
    ratings, _ = rules.rate([], 2026, decide(("爱国守法星", True, ""), ("旧星", True, "")), "adm_1", "甲", NOW)
    rating = rules.rating_of(ratings, 2026, ["爱国守法星"])
    assert (rating.awarded, rating.total, rating.all_stars) == (1, 1, True)
    assert rules.rating_of([], 2026, []).all_stars is False


@pytest.mark.parametrize(("address", "shown"), [
    ("幸福路12号3单元501", "幸福路****"),
    ("城关镇新华村三组8号", "城关镇新华村****"),
    ("阳光小区5栋2单元", "阳光小区****"),
    ("一二三四五六七八九十", "一二三****"),   # no street: its first third
    ("幸福路", "幸****"),                     # nothing after the street
    ("", ""),
])
def test_an_address_is_shown_down_to_its_street_or_village(address, shown):
    assert mask_address(address) == shown
