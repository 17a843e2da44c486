"""礼遇 and 爱心商家 over real gRPC, broker and database: a unit admin registers a merchant (its phone
masked for everyone but the registering unit's admins), the center admin sets the 礼遇 rules, a
one-star volunteer sees and pays the discounted price, an item reserved for two stars is refused,
我的礼遇 says what the next star brings, donated stock is recorded, a suspended merchant's items
are refused; every refusal by role, subtree and field."""

from __future__ import annotations

import uuid

import grpc
import pytest

from tests.points.support import POINTS_TOPIC, token_for, volunteer_principal
from tests.points.test_store import tree  # noqa: F401 (the module's units, known to points)
from tests.support.events import TopicTap
from tests.support.grpc_helpers import bearer, expect_error
from tests.support.waiting import wait_until
from wenming.points.v1 import events_pb2 as pev
from wenming.points.v1 import points_pb2 as pb

def _account(stub, metadata) -> pb.Account:
    return stub.GetAccount(pb.GetAccountRequest(), metadata=metadata, timeout=5).account


@pytest.fixture(scope="module")
def merchant_request():
    return pb.RegisterMerchantRequest(name="爱心面包房", address="凉州区东大街12号", contact_name="李师傅",
                                      contact_phone="13812345678", idempotency_key="mer-1")


def test_merchants_rules_discounted_redemption_and_my_perks(module_district, tree, stub, feed, stack,  # noqa: F811
                                                            merchant_request):
    d = module_district.id
    station, other_station, courtyard = tree.stations[0], tree.stations[1], tree.courtyards[0]
    station_admin, other_admin = bearer(tree.admins[station.unit_id]), bearer(tree.admins[other_station.unit_id])
    center_admin, courtyard_admin = bearer(tree.admins[tree.center.unit_id]), bearer(tree.admins[courtyard.unit_id])
    starred, newcomer = f"vol_star{uuid.uuid4().hex[:8]}", f"vol_new{uuid.uuid4().hex[:8]}"
    me = token_for(stack, volunteer_principal(d, starred, courtyard))
    them = token_for(stack, volunteer_principal(d, newcomer, courtyard))
    feed.verified_hours(d, starred, 100, courtyard=courtyard, station=station)  # 1 star, 1000 points
    feed.verified_hours(d, newcomer, 20, courtyard=courtyard, station=station)  # no star, 200 points
    tap = TopicTap(stack.kafka, POINTS_TOPIC)
    try:
        # 爱心商家: registered by the station's admin, once per idempotency key
        merchant = stub.RegisterMerchant(pb.RegisterMerchantRequest(unit_id=station.unit_id, **_fields(
            merchant_request)), metadata=station_admin, timeout=5).merchant
        assert (merchant.contact_phone_masked, merchant.contact_phone) == ("138****5678", "13812345678")
        assert merchant.status == pb.MERCHANT_STATUS_ACTIVE and merchant.unit.unit_id == station.unit_id
        again = stub.RegisterMerchant(pb.RegisterMerchantRequest(unit_id=station.unit_id, **_fields(merchant_request)),
                                      metadata=station_admin, timeout=5).merchant
        assert again.merchant_id == merchant.merchant_id
        with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="idempotency_key"):
            stub.RegisterMerchant(pb.RegisterMerchantRequest(unit_id=station.unit_id, **{
                **_fields(merchant_request), "name": "另一家店"}), metadata=station_admin, timeout=5)
        with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="idempotency_key"):  # the same mask, not the same phone
            stub.RegisterMerchant(pb.RegisterMerchantRequest(unit_id=station.unit_id, **{
                **_fields(merchant_request), "contact_phone": "13800005678"}), metadata=station_admin, timeout=5)
        # the courtyard below sees it, the phone masked only
        listed = stub.ListMerchants(pb.ListMerchantsRequest(unit_id=courtyard.unit_id), metadata=courtyard_admin,
                                    timeout=5).merchants
        assert [(m.name, m.contact_phone_masked, m.contact_phone) for m in listed] == [
            ("爱心面包房", "138****5678", "")]
        assert stub.ListMerchants(pb.ListMerchantsRequest(unit_id=other_station.unit_id), metadata=other_admin,
                                  timeout=5).merchants == []

        # 礼遇 rules, by the center's admin
        rules = stub.SetPerkRules(pb.SetPerkRulesRequest(expected_version=_rules_version(stub, center_admin), rules=[
            pb.PerkRule(min_star_level=1, discount_percent=10),
            pb.PerkRule(min_star_level=1, discount_percent=20, merchant_id=merchant.merchant_id,
                        benefits=["生日蛋糕八折"]),
            pb.PerkRule(min_star_level=2, benefits=["免费体检", "景区免票"])]), metadata=center_admin, timeout=5).rules
        assert rules.rules[1].merchant_name == "爱心面包房"
        with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="请刷新后重试"):
            stub.SetPerkRules(pb.SetPerkRulesRequest(expected_version=rules.version - 1, rules=[
                pb.PerkRule(min_star_level=1, discount_percent=5)]), metadata=center_admin, timeout=5)
        assert stub.GetPerkRules(pb.GetPerkRulesRequest(), metadata=me, timeout=5).rules == rules

        bread = stub.CreateStoreItem(pb.CreateStoreItemRequest(
            unit_id=station.unit_id, name="全麦面包", price_points=50, stock=5, merchant_id=merchant.merchant_id),
            metadata=station_admin, timeout=5).item
        checkup = stub.CreateStoreItem(pb.CreateStoreItemRequest(
            unit_id=station.unit_id, name="体检券", price_points=15, stock=5, min_star_level=2),
            metadata=station_admin, timeout=5).item
        assert (bread.merchant_name, checkup.min_star_level) == ("爱心面包房", 2)

        wait_until(lambda: _account(stub, me).star_level == 1 and _account(stub, them).points == 200, 30,
                   what="the first star and the newcomer's points")
        seen = {i.name: i for i in stub.ListStoreItems(pb.ListStoreItemsRequest(unit_id=station.unit_id),
                                                       metadata=me, timeout=5).items}
        assert (seen["全麦面包"].your_price_points, seen["全麦面包"].your_discount_percent) == (40, 20)
        assert (seen["体检券"].your_price_points, seen["体检券"].reserved_above_you) == (13, True)  # 1.5 off: 2

        bought = stub.Redeem(pb.RedeemRequest(item_id=bread.item_id, quantity=2, idempotency_key="bread-1"),
                             metadata=me, timeout=10).redemption
        assert (bought.cost_points, bought.list_price_points, bought.discount_percent) == (80, 50, 20)
        assert _account(stub, me).points == 1000 - 80
        with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="该物品仅限2星及以上志愿者兑换，您当前为1星"):
            stub.Redeem(pb.RedeemRequest(item_id=checkup.item_id, quantity=1, idempotency_key="check-1"),
                        metadata=me, timeout=10)
        plain = stub.Redeem(pb.RedeemRequest(item_id=bread.item_id, quantity=1, idempotency_key="bread-2"),
                            metadata=them, timeout=10).redemption
        assert (plain.cost_points, plain.discount_percent) == (50, 0)  # no star, no discount

        perks = stub.GetMyPerks(pb.GetMyPerksRequest(), metadata=me, timeout=5)
        assert (perks.star_level, perks.next_star_level, perks.next_star_threshold_hours, perks.counted_hours) == \
            (1, 2, 300, 100)
        assert [r.discount_percent for r in perks.current] == [10, 20]
        assert [list(r.benefits) for r in perks.next] == [["免费体检", "景区免票"]]
        assert stub.GetMyPerks(pb.GetMyPerksRequest(volunteer_id=newcomer), metadata=them, timeout=5).current == []

        # donated stock: who gave it, recorded with the stock
        donated = stub.RestockStoreItem(pb.RestockStoreItemRequest(
            item_id=bread.item_id, quantity=10, source=pb.STOCK_SOURCE_MERCHANT, donor_merchant_id=merchant.merchant_id),
            metadata=station_admin, timeout=5).item
        assert (donated.stock, donated.donated_stock) == (5 - 3 + 10, 10)
        charity = stub.RestockStoreItem(pb.RestockStoreItemRequest(
            item_id=checkup.item_id, quantity=3, source=pb.STOCK_SOURCE_CHARITY_STORE, donor_name="凉州区慈善超市"),
            metadata=station_admin, timeout=5).item
        assert (charity.stock, charity.donated_stock) == (8, 3)

        # suspended: its items are refused, the record stays
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            stub.SetMerchantStatus(pb.SetMerchantStatusRequest(merchant_id=merchant.merchant_id,
                                                               status=pb.MERCHANT_STATUS_SUSPENDED, reason="停业整顿"),
                                   metadata=other_admin, timeout=5)
        suspended = stub.SetMerchantStatus(pb.SetMerchantStatusRequest(
            merchant_id=merchant.merchant_id, status=pb.MERCHANT_STATUS_SUSPENDED, reason="停业整顿"),
            metadata=station_admin, timeout=5).merchant
        assert (suspended.status, suspended.status_reason) == (pb.MERCHANT_STATUS_SUSPENDED, "停业整顿")
        with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="爱心面包房」已暂停合作"):
            stub.Redeem(pb.RedeemRequest(item_id=bread.item_id, quantity=1, idempotency_key="bread-3"),
                        metadata=me, timeout=10)

        def announced() -> list[str]:
            return sorted(type(p).__name__ for _, p, _ in tap.events(d) if isinstance(p, (
                pev.MerchantRegistered, pev.MerchantStatusChanged, pev.PerkRulesChanged, pev.StockDonated)))
        expected = ["MerchantRegistered", "MerchantStatusChanged", "PerkRulesChanged", "StockDonated", "StockDonated"]
        wait_until(lambda: announced() == expected, 15, what=f"{expected} (so far {announced()})")
        redeemed = [p for _, p, _ in tap.events(d) if isinstance(p, pev.ItemRedeemed)
                    and p.redemption_id == bought.redemption_id]
        assert [(p.cost_points, p.list_price_points, p.discount_percent) for p in redeemed] == [(80, 50, 20)]
    finally:
        tap.close()


def test_refusals_by_role_subtree_and_field(module_district, tree, stub, stack, merchant_request):  # noqa: F811
    d = module_district.id
    station, other_station, courtyard = tree.stations[0], tree.stations[1], tree.courtyards[0]
    station_admin, other_admin = bearer(tree.admins[station.unit_id]), bearer(tree.admins[other_station.unit_id])
    me = token_for(stack, volunteer_principal(d, f"vol_{uuid.uuid4().hex[:8]}", courtyard))
    register = lambda metadata, **changes: stub.RegisterMerchant(pb.RegisterMerchantRequest(**{  # noqa: E731
        **_fields(merchant_request), "unit_id": station.unit_id, "idempotency_key": uuid.uuid4().hex, **changes}),
        metadata=metadata, timeout=5)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        register(me)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):  # another station's admin
        register(other_admin)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="contact_phone"):
        register(station_admin, contact_phone="12345")
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="name"):
        register(station_admin, name="")
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="idempotency_key"):
        register(station_admin, idempotency_key="")
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        stub.ListMerchants(pb.ListMerchantsRequest(unit_id=station.unit_id), metadata=other_admin, timeout=5)

    # the rules: center admins only, every field checked
    with expect_error(grpc.StatusCode.PERMISSION_DENIED, contains="区级"):
        stub.SetPerkRules(pb.SetPerkRulesRequest(rules=[pb.PerkRule(min_star_level=1, discount_percent=5)]),
                          metadata=station_admin, timeout=5)
    center_admin = bearer(tree.admins[tree.center.unit_id])
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="rules[0].min_star_level"):
        stub.SetPerkRules(pb.SetPerkRulesRequest(rules=[pb.PerkRule(min_star_level=9, discount_percent=5)]),
                          metadata=center_admin, timeout=5)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="rules[0].merchant_id"):
        stub.SetPerkRules(pb.SetPerkRulesRequest(expected_version=_rules_version(stub, center_admin), rules=[
            pb.PerkRule(min_star_level=1, discount_percent=5, merchant_id="mer_nobody")]), metadata=center_admin,
            timeout=5)

    # 我的礼遇: one's own only
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        stub.GetMyPerks(pb.GetMyPerksRequest(volunteer_id="vol_someone_else"), metadata=me, timeout=5)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="volunteer_id"):
        stub.GetMyPerks(pb.GetMyPerksRequest(), metadata=station_admin, timeout=5)

    # items: a merchant of another station is not this store's; star levels and donors checked
    theirs = register(other_admin, unit_id=other_station.unit_id).merchant
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="merchant_id"):
        stub.CreateStoreItem(pb.CreateStoreItemRequest(unit_id=station.unit_id, name="面包", price_points=5, stock=1,
                                                       merchant_id=theirs.merchant_id), metadata=station_admin,
                             timeout=5)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="min_star_level"):
        stub.CreateStoreItem(pb.CreateStoreItemRequest(unit_id=station.unit_id, name="面包", price_points=5, stock=1,
                                                       min_star_level=6), metadata=station_admin, timeout=5)
    item = stub.CreateStoreItem(pb.CreateStoreItemRequest(unit_id=station.unit_id, name="牙膏", price_points=5,
                                                          stock=1), metadata=station_admin, timeout=5).item
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="donor_name"):
        stub.RestockStoreItem(pb.RestockStoreItemRequest(item_id=item.item_id, quantity=1,
                                                         source=pb.STOCK_SOURCE_CHARITY_STORE),
                              metadata=station_admin, timeout=5)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        stub.RestockStoreItem(pb.RestockStoreItemRequest(item_id=item.item_id, quantity=1,
                                                         source=pb.STOCK_SOURCE_MERCHANT,
                                                         donor_merchant_id=theirs.merchant_id),
                              metadata=other_admin, timeout=5)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="status"):
        stub.SetMerchantStatus(pb.SetMerchantStatusRequest(merchant_id=theirs.merchant_id, reason="停业整顿"),
                               metadata=other_admin, timeout=5)


def _fields(message) -> dict:
    return {f.name: v for f, v in message.ListFields()}


def _rules_version(stub, metadata) -> int:
    return stub.GetPerkRules(pb.GetPerkRulesRequest(), metadata=metadata, timeout=5).rules.version
