"""The district's own menu taxonomy (类 and 项): what a valid one is, the national default, and how
a menu item's or activity's district item decides its national category. Plain functions, tested
in tests/unit/test_taxonomy_rules.py; taxonomy.py stores and serves it.

Every district category maps to one national ServiceCategory, so the point rules (set per
national category) and the monthly report keep working whatever a district calls its categories.
A district that defined nothing has the national 七讲 and 三关爱 as its categories, without items.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import cast

from services.common.errors import InvalidArgument
from services.common.events import to_timestamp
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import types_pb2

S = common_pb2.ServiceCategory
L = common_pb2.UnitLevel
CODE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,39}$")
CODE_RULE = "must be 2 to 40 of a-z, 0-9, '_', '.' or '-'"
MAX_CATEGORIES, MAX_ITEMS_PER_CATEGORY = 30, 30
MAX_CATEGORY_NAME, MAX_ITEM_NAME = 20, 30
MAX_PER_MONTH = 31

NATIONAL_NAMES = {
    S.SERVICE_CATEGORY_LECTURE_THEORY: "讲理论", S.SERVICE_CATEGORY_LECTURE_POLICY: "讲政策",
    S.SERVICE_CATEGORY_LECTURE_SCIENCE: "讲科学", S.SERVICE_CATEGORY_LECTURE_LAW: "讲法治",
    S.SERVICE_CATEGORY_LECTURE_HEALTH: "讲健康", S.SERVICE_CATEGORY_LECTURE_ROLE_MODELS: "讲典型",
    S.SERVICE_CATEGORY_LECTURE_CHANGE: "讲变化", S.SERVICE_CATEGORY_CARE_FOR_OTHERS: "关爱他人",
    S.SERVICE_CATEGORY_CARE_FOR_SOCIETY: "关爱社会", S.SERVICE_CATEGORY_CARE_FOR_NATURE: "关爱自然",
}


@dataclass(frozen=True)
class MandatoryRule:
    level: int
    min_per_month: int


@dataclass(frozen=True)
class Item:
    code: str
    name: str
    mandatory: tuple[MandatoryRule, ...] = ()


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    national_category: int
    items: tuple[Item, ...] = ()


@dataclass(frozen=True)
class Taxonomy:
    district_id: str
    categories: tuple[Category, ...]
    version: int = 0
    updated_by: str = ""
    updated_at: dt.datetime | None = None
    defaults: bool = False  # the national default: the district has defined none (or went back to it)
    by_item: dict[str, Category] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for category in self.categories:
            for item in category.items:
                self.by_item[item.code] = category


def national_default(district_id: str) -> Taxonomy:
    """The taxonomy of a district that defined none: one category per national category."""
    return Taxonomy(district_id, tuple(
        Category(S.Name(national).removeprefix("SERVICE_CATEGORY_").lower(), name, national)
        for national, name in NATIONAL_NAMES.items()), defaults=True)


# ---- validating a new taxonomy ----

def validate(v: Validator, categories: list[types_pb2.DistrictCategory]) -> tuple[Category, ...]:
    """The categories of a SetDistrictTaxonomy request; none means back to the national default.
    Codes and names are unique across the district (items' codes across all categories)."""
    if len(categories) > MAX_CATEGORIES:
        v.fail("categories", f"allows at most {MAX_CATEGORIES} categories (got {len(categories)})")
        return ()
    codes: set[str] = set()
    names: set[str] = set()
    result = []
    for i, msg in enumerate(categories):
        at = f"categories[{i}]"
        code = _code(v, f"{at}.code", msg.code, codes)
        name = _name(v, f"{at}.name", msg.name, MAX_CATEGORY_NAME, names)
        v.enum(f"{at}.national_category", msg.national_category, common_pb2.ServiceCategory)
        if len(msg.items) > MAX_ITEMS_PER_CATEGORY:
            v.fail(f"{at}.items", f"allows at most {MAX_ITEMS_PER_CATEGORY} items (got {len(msg.items)})")
            continue
        items = tuple(_item(v, f"{at}.items[{j}]", item, codes, names) for j, item in enumerate(msg.items))
        result.append(Category(code, name, msg.national_category, items))
    return tuple(result)


def _item(v: Validator, at: str, msg: types_pb2.DistrictItem, codes: set[str], names: set[str]) -> Item:
    code = _code(v, f"{at}.code", msg.code, codes)
    name = _name(v, f"{at}.name", msg.name, MAX_ITEM_NAME, names)
    levels: set[int] = set()
    rules = []
    for k, rule in enumerate(msg.mandatory):
        v.enum(f"{at}.mandatory[{k}].level", rule.level, common_pb2.UnitLevel)
        if rule.level in levels:
            v.fail(f"{at}.mandatory[{k}].level", "is listed twice")
        levels.add(rule.level)
        v.int_range(f"{at}.mandatory[{k}].min_per_month", rule.min_per_month, 1, MAX_PER_MONTH)
        rules.append(MandatoryRule(rule.level, rule.min_per_month))
    return Item(code, name, tuple(sorted(rules, key=lambda r: r.level)))


def _code(v: Validator, at: str, value: str, seen: set[str]) -> str:
    code = v.regex(at, value, CODE, CODE_RULE)
    if code and code in seen:
        v.fail(at, "is used twice in the taxonomy")
    seen.add(code)
    return code


def _name(v: Validator, at: str, value: str, max_len: int, seen: set[str]) -> str:
    name = v.text(at, value.strip(), max_len=max_len)
    if name and name in seen:
        v.fail(at, "is used twice in the taxonomy")
    seen.add(name)
    return name


def item_codes(categories: tuple[Category, ...]) -> set[str]:
    return {item.code for category in categories for item in category.items}


def is_replay(stored: Taxonomy, expected_version: int, categories: tuple[Category, ...]) -> bool:
    """A repeat of a SetDistrictTaxonomy that already applied: the stored taxonomy is the one it
    asked for, one version past the one it named."""
    wanted = categories or national_default(stored.district_id).categories
    return stored.version == expected_version + 1 and stored.categories == wanted


# ---- a menu item's or activity's district item ----

def resolve(taxonomy: Taxonomy, item_code: str, category: int, *, item_field: str = "district_item_code",
            category_field: str = "category") -> int:
    """The national category of something published or planned with `item_code` (may be empty)
    and `category` (may be unspecified only with an item): the item's category's national one."""
    if not item_code:
        if not category:
            raise InvalidArgument.field(category_field, "must be set (or name a district_item_code)")
        return category
    home = taxonomy.by_item.get(item_code)
    if home is None:
        raise InvalidArgument.field(item_field, "is not an item of the district's menu taxonomy")
    if category and category != home.national_category:
        raise InvalidArgument.field(
            category_field, f"must be {S.Name(home.national_category)}, the category of the item's "
                            f"district category {home.code}")
    return home.national_category


# ---- storage and API shapes ----

def to_document(categories: tuple[Category, ...]) -> list[dict]:
    return [{"code": c.code, "name": c.name, "national_category": c.national_category,
             "items": [{"code": i.code, "name": i.name,
                        "mandatory": [{"level": r.level, "min_per_month": r.min_per_month} for r in i.mandatory]}
                       for i in c.items]} for c in categories]


def from_document(district_id: str, doc: dict | None) -> Taxonomy:
    if not doc or not doc.get("categories"):
        default = national_default(district_id)
        if doc:  # the district went back to the default: keep its version for the next change
            return Taxonomy(district_id, default.categories, doc["version"], doc.get("updated_by", ""),
                            doc.get("updated_at"), defaults=True)
        return default
    return Taxonomy(district_id, tuple(
        Category(c["code"], c["name"], c["national_category"], tuple(
            Item(i["code"], i["name"], tuple(MandatoryRule(r["level"], r["min_per_month"])
                                              for r in i.get("mandatory", ())))
            for i in c.get("items", ())))
        for c in doc["categories"]), doc["version"], doc.get("updated_by", ""), doc.get("updated_at"))


def taxonomy_msg(taxonomy: Taxonomy) -> types_pb2.DistrictTaxonomy:
    return types_pb2.DistrictTaxonomy(
        district_id=taxonomy.district_id, version=taxonomy.version, defaults=taxonomy.defaults,
        updated_by=taxonomy.updated_by,
        updated_at=to_timestamp(taxonomy.updated_at) if taxonomy.updated_at else None,
        categories=[types_pb2.DistrictCategory(
            code=c.code, name=c.name, national_category=cast(S, c.national_category),
            items=[types_pb2.DistrictItem(code=i.code, name=i.name, mandatory=[
                types_pb2.MandatoryRule(level=cast(L, r.level), min_per_month=r.min_per_month) for r in i.mandatory])
                for i in c.items]) for c in taxonomy.categories])
