"""礼遇 by star level and 爱心商家, as plain functions tested in tests/unit/test_perk_rules.py;
storing and reading live in perks.py, charging in store.py.

A district's rules say what a volunteer of at least N stars gets: a discount in per cent on store
items (optionally only on one merchant's items) and free services as text that merchants honour.
Several rules may apply: the best discount counts (discounts do not add up), every benefit is
listed. An item may be reserved for volunteers of N stars or more (`min_star_level`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.common.errors import FailedPrecondition, InvalidArgument
from services.common.validation import Validator
from wenming.points.v1 import points_pb2 as pb

from .rules import STAR_LEVELS

MAX_DISCOUNT_PERCENT = 90  # a volunteer always pays something: the store's stock is not free to empty
MAX_RULES = 20
MAX_BENEFITS = 10
BENEFIT_CHARS = (2, 30)


@dataclass(frozen=True)
class PerkRule:
    min_star_level: int
    discount_percent: int = 0
    merchant_id: str = ""
    benefits: tuple[str, ...] = ()

    def applies_at(self, star_level: int) -> bool:
        return star_level >= self.min_star_level

    def discounts(self, item_merchant_id: str) -> bool:
        """Whether this rule's discount is for an item of `item_merchant_id` ("" = the unit's own)."""
        return not self.merchant_id or self.merchant_id == item_merchant_id


@dataclass(frozen=True)
class Price:
    """What one piece costs a caller: the list price, the discount applied and the points paid."""

    list_points: int
    discount_percent: int
    points: int


def validate(v: Validator, rules: Sequence[pb.PerkRule]) -> list[PerkRule]:
    """The rules of a SetPerkRules, each violation named by its path (`rules[2].benefits[0]`)."""
    if len(rules) > MAX_RULES:
        v.fail("rules", f"must hold at most {MAX_RULES} rules")
    valid = []
    for n, rule in enumerate(rules[:MAX_RULES]):
        at = f"rules[{n}]"
        level = v.int_range(f"{at}.min_star_level", rule.min_star_level, 1, STAR_LEVELS)
        discount = v.int_range(f"{at}.discount_percent", rule.discount_percent, 0, MAX_DISCOUNT_PERCENT)
        merchant_id = v.ident(f"{at}.merchant_id", rule.merchant_id, required=False)
        if len(rule.benefits) > MAX_BENEFITS:
            v.fail(f"{at}.benefits", f"must hold at most {MAX_BENEFITS} benefits")
        benefits = tuple(v.text(f"{at}.benefits[{b}]", text, min_len=BENEFIT_CHARS[0], max_len=BENEFIT_CHARS[1])
                         for b, text in enumerate(rule.benefits[:MAX_BENEFITS]))
        if not discount and not benefits:
            v.fail(at, "must give a discount or at least one benefit")
        valid.append(PerkRule(level, discount, merchant_id, benefits))
    return valid


def price(list_points: int, star_level: int, rules: Iterable[PerkRule], item_merchant_id: str) -> Price:
    """One piece's price for a volunteer of `star_level` stars: the best discount of the rules
    that apply to them and to the item's merchant, rounded in the volunteer's favour, never
    below one point. Residents and admins have no stars (0): no rule applies."""
    discount = max((r.discount_percent for r in rules if r.applies_at(star_level) and r.discounts(item_merchant_id)),
                   default=0)
    off = list_points * discount // 100 if discount else 0
    if discount and list_points * discount % 100:
        off += 1  # a fraction of a point off is a whole point off
    return Price(list_points, discount, max(1, list_points - off))


def require_stars(min_star_level: int, star_level: int) -> None:
    """An item reserved for volunteers of `min_star_level` stars or more (优先兑换)."""
    if star_level < min_star_level:
        raise FailedPrecondition(f"该物品仅限{min_star_level}星及以上志愿者兑换，您当前为{star_level}星")


def applying(rules: Iterable[PerkRule], star_level: int) -> list[PerkRule]:
    """The rules a volunteer of `star_level` stars enjoys, lowest level first."""
    return sorted((r for r in rules if r.applies_at(star_level)), key=lambda r: r.min_star_level)


def next_star(star_level: int) -> int:
    """The next level there is to reach; 0 at the highest."""
    return star_level + 1 if star_level < STAR_LEVELS else 0


def brought_by(rules: Iterable[PerkRule], star_level: int) -> list[PerkRule]:
    """What reaching exactly `star_level` adds (nothing for level 0: there is no next star)."""
    return [r for r in rules if r.min_star_level == star_level] if star_level else []


def from_documents(docs: Iterable[dict]) -> list[PerkRule]:
    return [PerkRule(d["min_star_level"], d["discount_percent"], d["merchant_id"], tuple(d["benefits"]))
            for d in docs]


def to_documents(rules: Iterable[PerkRule]) -> list[dict]:
    return [{"min_star_level": r.min_star_level, "discount_percent": r.discount_percent,
             "merchant_id": r.merchant_id, "benefits": list(r.benefits)} for r in rules]


def rule_msg(rule: PerkRule, merchant_names: dict[str, str]) -> pb.PerkRule:
    return pb.PerkRule(min_star_level=rule.min_star_level, discount_percent=rule.discount_percent,
                       merchant_id=rule.merchant_id, merchant_name=merchant_names.get(rule.merchant_id, ""),
                       benefits=list(rule.benefits))


def require_offerable(merchant: dict | None, item_unit_path: Sequence[str], field: str = "merchant_id") -> dict:
    """The merchant, when a store item may be offered by it: registered by the item's unit or a unit
    above it (a station's store shows the district's merchants, not another station's), and active."""
    if merchant is None or merchant["unit_id"] not in item_unit_path:
        raise InvalidArgument.field(field, "is not a merchant registered by this store's unit or a unit above it")
    require_active(merchant)
    return merchant


def require_active(merchant: dict) -> None:
    if merchant["status"] != pb.MERCHANT_STATUS_ACTIVE:
        raise FailedPrecondition(f"爱心商家「{merchant['name']}」已暂停合作，暂不能兑换其物品")
