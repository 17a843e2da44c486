"""礼遇 by star level, in memory: what a volunteer pays, which items their stars open, what they
enjoy now and what the next star brings (services/points/perk_rules.py)."""

from __future__ import annotations

import pytest

from services.common.errors import FailedPrecondition, InvalidArgument
from services.common.validation import Validator
from services.points import perk_rules as perks
from services.points.perk_rules import PerkRule
from wenming.points.v1 import points_pb2 as pb

RULES = (
    PerkRule(1, discount_percent=5),
    PerkRule(3, discount_percent=10, benefits=("免费体检",)),
    PerkRule(2, discount_percent=30, merchant_id="mer_bakery", benefits=("面包买一送一",)),
    PerkRule(5, benefits=("景区免票", "优先预约")),
)


@pytest.mark.parametrize(("list_points", "stars", "merchant", "discount", "paid"), [
    (100, 0, "", 0, 100),             # no stars (residents, admins): list price
    (100, 1, "", 5, 95),
    (100, 3, "", 10, 90),             # the best applicable discount, not 5 + 10
    (100, 5, "", 10, 90),
    (100, 2, "mer_bakery", 30, 70),   # the merchant's own rule beats the general one
    (100, 3, "mer_bakery", 30, 70),
    (100, 2, "mer_other", 5, 95),     # another merchant's rule does not apply to this item
    (100, 1, "mer_bakery", 5, 95),    # the merchant's rule needs 2 stars
    (15, 1, "", 5, 14),               # 0.75 off counts as 1 (rounded in the volunteer's favour)
    (7, 3, "", 10, 6),
    (1, 5, "mer_bakery", 30, 1),      # never below one point
])
def test_price(list_points, stars, merchant, discount, paid):
    assert perks.price(list_points, stars, RULES, merchant) == perks.Price(list_points, discount, paid)


def test_price_without_rules_is_the_list_price():
    assert perks.price(40, 5, (), "") == perks.Price(40, 0, 40)


@pytest.mark.parametrize(("reserved", "stars", "allowed"), [
    (0, 0, True), (2, 1, False), (2, 2, True), (2, 5, True), (5, 4, False),
])
def test_items_reserved_for_stars(reserved, stars, allowed):
    if allowed:
        perks.require_stars(reserved, stars)
    else:
        with pytest.raises(FailedPrecondition, match=f"该物品仅限{reserved}星及以上志愿者兑换，您当前为{stars}星"):
            perks.require_stars(reserved, stars)


@pytest.mark.parametrize(("stars", "now", "next_level", "brought"), [
    (0, [], 1, [1]),
    (1, [1], 2, [2]),
    (2, [1, 2], 3, [3]),
    (3, [1, 2, 3], 4, []),            # the 4th star brings nothing new
    (4, [1, 2, 3], 5, [5]),
    (5, [1, 2, 3, 5], 0, []),         # the highest level: no next star
])
def test_what_a_volunteer_enjoys_and_what_the_next_star_brings(stars, now, next_level, brought):
    assert [r.min_star_level for r in perks.applying(RULES, stars)] == now
    assert perks.next_star(stars) == next_level
    assert [r.min_star_level for r in perks.brought_by(RULES, perks.next_star(stars))] == brought


def _validated(*rules: pb.PerkRule) -> tuple[list[PerkRule], list[str]]:
    v = Validator()
    valid = perks.validate(v, rules)
    try:
        v.check()
    except InvalidArgument as exc:
        return valid, [field for field, _ in exc.violations]
    return valid, []


def test_valid_rules_read_back():
    valid, refused = _validated(pb.PerkRule(min_star_level=3, discount_percent=10, benefits=["免费体检"]),
                                pb.PerkRule(min_star_level=2, merchant_id="mer_1", benefits=["景区免票"]))
    assert refused == []
    assert valid == [PerkRule(3, 10, "", ("免费体检",)), PerkRule(2, 0, "mer_1", ("景区免票",))]
    assert perks.from_documents(perks.to_documents(valid)) == valid


@pytest.mark.parametrize(("rule", "field"), [
    (pb.PerkRule(min_star_level=0, discount_percent=5), "rules[0].min_star_level"),
    (pb.PerkRule(min_star_level=6, discount_percent=5), "rules[0].min_star_level"),
    (pb.PerkRule(min_star_level=1, discount_percent=91), "rules[0].discount_percent"),
    (pb.PerkRule(min_star_level=1, discount_percent=-1), "rules[0].discount_percent"),
    (pb.PerkRule(min_star_level=1), "rules[0]"),  # gives nothing
    (pb.PerkRule(min_star_level=1, benefits=["免"]), "rules[0].benefits[0]"),
    (pb.PerkRule(min_star_level=1, benefits=["很" * 31]), "rules[0].benefits[0]"),
    (pb.PerkRule(min_star_level=1, benefits=["免费体检"] * 11), "rules[0].benefits"),
    (pb.PerkRule(min_star_level=1, discount_percent=5, merchant_id="bad id!"), "rules[0].merchant_id"),
])
def test_bad_rules_are_named_by_field(rule, field):
    assert field in _validated(rule)[1]


def test_at_most_twenty_rules():
    assert "rules" in _validated(*[pb.PerkRule(min_star_level=1, discount_percent=1)] * 21)[1]


STATION_PATH = ("center", "inst", "station")


@pytest.mark.parametrize(("merchant", "allowed"), [
    ({"unit_id": "center", "status": pb.MERCHANT_STATUS_ACTIVE, "name": "爱心面包房"}, True),
    ({"unit_id": "station", "status": pb.MERCHANT_STATUS_ACTIVE, "name": "爱心面包房"}, True),
    ({"unit_id": "other_station", "status": pb.MERCHANT_STATUS_ACTIVE, "name": "爱心面包房"}, False),
    (None, False),
])
def test_a_store_offers_merchants_of_its_unit_or_above(merchant, allowed):
    if allowed:
        perks.require_offerable(merchant, STATION_PATH)
    else:
        with pytest.raises(InvalidArgument):
            perks.require_offerable(merchant, STATION_PATH)


def test_a_suspended_merchant_offers_nothing():
    with pytest.raises(FailedPrecondition, match="爱心面包房」已暂停合作"):
        perks.require_offerable({"unit_id": "center", "status": pb.MERCHANT_STATUS_SUSPENDED, "name": "爱心面包房"},
                                STATION_PATH)
