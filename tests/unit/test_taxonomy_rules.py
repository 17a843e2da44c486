"""The district's menu taxonomy (类 and 项) in memory: the national default, what a valid taxonomy
is (refused by field), how a district item decides a menu item's or activity's national category,
and what counts as a repeat of a change already made."""

from __future__ import annotations

import pytest

from services.common.errors import InvalidArgument
from services.common.validation import Validator
from services.ordering import taxonomy_rules as rules
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import types_pb2 as t

S = c.ServiceCategory


def category(code="theory", name="理论宣讲", national=S.SERVICE_CATEGORY_LECTURE_THEORY, items=()):
    return t.DistrictCategory(code=code, name=name, national_category=national, items=list(items))


def item(code="neighbours_talk", name="身边人讲身边事", mandatory=()):
    return t.DistrictItem(code=code, name=name, mandatory=[
        t.MandatoryRule(level=level, min_per_month=n) for level, n in mandatory])


def validated(categories):
    v = Validator()
    result = rules.validate(v, categories)
    v.check()
    return result


def test_a_district_without_its_own_has_the_national_categories():
    default = rules.national_default("d1")
    assert default.defaults and default.version == 0
    assert [(cat.code, cat.name, cat.national_category) for cat in default.categories][:2] == [
        ("lecture_theory", "讲理论", S.SERVICE_CATEGORY_LECTURE_THEORY),
        ("lecture_policy", "讲政策", S.SERVICE_CATEGORY_LECTURE_POLICY)]
    assert len(default.categories) == 10 and all(not cat.items for cat in default.categories)
    assert rules.from_document("d1", None) == default


def test_a_valid_taxonomy_round_trips_through_storage_and_the_api():
    categories = validated([category(items=[item(mandatory=[(c.UNIT_LEVEL_STATION, 1)])]),
                            category("care", "关爱帮扶", S.SERVICE_CATEGORY_CARE_FOR_OTHERS, [item("haircut", "义务理发")])])
    stored = rules.from_document("d1", {"categories": rules.to_document(categories), "version": 3,
                                        "updated_by": "adm_1"})
    assert stored.categories == categories and stored.version == 3 and not stored.defaults
    msg = rules.taxonomy_msg(stored)
    assert [i.code for cat in msg.categories for i in cat.items] == ["neighbours_talk", "haircut"]
    assert msg.categories[0].items[0].mandatory[0].min_per_month == 1
    # back to the default keeps the version, so the next change names it
    back = rules.from_document("d1", {"categories": [], "version": 4})
    assert back.defaults and back.version == 4 and len(back.categories) == 10


BAD = [  # (categories, field)
    ([category(code="X")], "categories[0].code"),
    ([category(name="")], "categories[0].name"),
    ([category(name="很" * 21)], "categories[0].name"),
    ([category(national=0)], "categories[0].national_category"),
    ([category(), category(code="other")], "categories[1].name"),
    ([category(), category(name="其他")], "categories[1].code"),
    ([category(items=[item(), item(name="另一个")])], "categories[0].items[1].code"),
    ([category(items=[item(code="theory")])], "categories[0].items[0].code"),  # an item may not reuse a category's code
    ([category(items=[item(mandatory=[(0, 1)])])], "categories[0].items[0].mandatory[0].level"),
    ([category(items=[item(mandatory=[(c.UNIT_LEVEL_STATION, 0)])])], "categories[0].items[0].mandatory[0].min_per_month"),
    ([category(items=[item(mandatory=[(c.UNIT_LEVEL_STATION, 32)])])], "categories[0].items[0].mandatory[0].min_per_month"),
    ([category(items=[item(mandatory=[(c.UNIT_LEVEL_STATION, 1), (c.UNIT_LEVEL_STATION, 2)])])],
     "categories[0].items[0].mandatory[1].level"),
    ([category(code=f"c{i:02}", name=f"类{i}") for i in range(31)], "categories"),
    ([category(items=[item(f"i{i:02}", f"项{i}") for i in range(31)])], "categories[0].items"),
]


@pytest.mark.parametrize("categories, field", BAD)
def test_a_bad_taxonomy_is_refused_by_field(categories, field):
    with pytest.raises(InvalidArgument) as refused:
        validated(categories)
    assert field in [f for f, _ in refused.value.violations], refused.value.violations


def test_no_categories_means_the_national_default():
    assert validated([]) == ()


TAXONOMY = rules.Taxonomy("d1", validated([category(items=[item()])]), version=1)

# (item_code, category, national category or the refused field)
RESOLVE = [
    ("", S.SERVICE_CATEGORY_CARE_FOR_NATURE, S.SERVICE_CATEGORY_CARE_FOR_NATURE),  # no item: as before
    ("neighbours_talk", 0, S.SERVICE_CATEGORY_LECTURE_THEORY),                   # the item decides
    ("neighbours_talk", S.SERVICE_CATEGORY_LECTURE_THEORY, S.SERVICE_CATEGORY_LECTURE_THEORY),
    ("neighbours_talk", S.SERVICE_CATEGORY_CARE_FOR_NATURE, "category"),          # contradicts the item
    ("unknown_item", S.SERVICE_CATEGORY_LECTURE_THEORY, "district_item_code"),
    ("", 0, "category"),
]


@pytest.mark.parametrize("item_code, category_, expected", RESOLVE)
def test_a_district_item_decides_the_national_category(item_code, category_, expected):
    if isinstance(expected, str):
        with pytest.raises(InvalidArgument) as refused:
            rules.resolve(TAXONOMY, item_code, category_)
        assert [f for f, _ in refused.value.violations] == [expected]
    else:
        assert rules.resolve(TAXONOMY, item_code, category_) == expected


def test_a_repeat_of_an_applied_change_is_recognised_and_nothing_else():
    asked = TAXONOMY.categories
    assert rules.is_replay(TAXONOMY, 0, asked)
    assert not rules.is_replay(TAXONOMY, 1, asked)  # a new change on top of version 1
    assert not rules.is_replay(TAXONOMY, 0, validated([category(name="别的名字")]))
    back = rules.Taxonomy("d1", rules.national_default("d1").categories, version=2, defaults=True)
    assert rules.is_replay(back, 1, ())
