"""The points store over real gRPC, broker and database: a redemption takes stock and points
together or neither, retries are idempotent, codes are collected at the counter, refunds reverse
the debit; 200 parallel redemptions never oversell and never overdraw."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from services.points.store import RESTOCK_KEYS_KEPT
from tests.points.support import POINTS_TOPIC, token_for, volunteer_principal
from tests.support.events import TopicTap
from tests.support.grpc_helpers import bearer, expect_error
from tests.support.stack import CATCH_UP_SECONDS
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.points.v1 import events_pb2 as pev
from wenming.points.v1 import points_pb2 as pb

VERIFIED = c.HOURS_SOURCE_VERIFIED


@pytest.fixture(scope="module")
def tree(module_district, points, stack, mongo_client):
    tree = module_district.small_tree()
    # stores belong to units points knows from registration's events (its own consumer)
    units = mongo_client[f"{stack.db_prefix}points"].registry_units
    assert wait_until(lambda: units.count_documents({"district_id": module_district.id}) == 8, CATCH_UP_SECONDS)
    return tree


def fund(feed, district_id: str, tree, volunteer_ids: list[str], minutes: int) -> None:
    """Verified hours → points (10 per hour, 讲理论) through ordering's event, as in production."""
    order = feed.order(f"ord_{uuid.uuid4().hex[:12]}", courtyard=tree.courtyards[0], handling=tree.stations[0])
    feed.send(*[feed.hours_confirmed(district_id, order.__class__(**{**_fields(order),
                                                                      "order_id": f"ord_{uuid.uuid4().hex[:12]}"}),
                                     [(v, minutes, VERIFIED)], tree.stations[0]) for v in volunteer_ids])


def _fields(snapshot) -> dict:
    return {f.name: getattr(snapshot, f.name) for f, _ in snapshot.ListFields()}


def _points(stub, metadata) -> int:
    return stub.GetAccount(pb.GetAccountRequest(), metadata=metadata, timeout=5).account.points


def test_redeem_collect_refund(module_district, tree, stub, feed, stack):
    station, admin = tree.stations[0], bearer(tree.admins[tree.stations[0].unit_id])
    vid = f"vol_store{uuid.uuid4().hex[:8]}"
    me = token_for(stack, volunteer_principal(module_district.id, vid, tree.courtyards[0]))
    fund(feed, module_district.id, tree, [vid], 600)  # 100 points
    assert wait_until(lambda: _points(stub, me) == 100, 30)
    item = stub.CreateStoreItem(pb.CreateStoreItemRequest(unit_id=station.unit_id, name="洗衣液", price_points=30,
                                                          stock=5, description="蓝月亮 1kg"),
                                metadata=admin, timeout=5).item
    listed = stub.ListStoreItems(pb.ListStoreItemsRequest(unit_id=station.unit_id), metadata=me, timeout=5).items
    assert [i.name for i in listed] == ["洗衣液"]
    tap = TopicTap(stack.kafka, POINTS_TOPIC)
    try:
        first = stub.Redeem(pb.RedeemRequest(item_id=item.item_id, quantity=2, idempotency_key="k-1"), metadata=me,
                            timeout=10).redemption
        assert first.status == pb.REDEMPTION_STATUS_COMPLETED and first.cost_points == 60 and len(first.code) == 8
        retry = stub.Redeem(pb.RedeemRequest(item_id=item.item_id, quantity=2, idempotency_key="k-1"), metadata=me,
                            timeout=10).redemption
        assert retry.redemption_id == first.redemption_id and _points(stub, me) == 40
        with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="idempotency_key"):
            stub.Redeem(pb.RedeemRequest(item_id=item.item_id, quantity=1, idempotency_key="k-1"), metadata=me,
                        timeout=10)
        with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="not enough points"):
            stub.Redeem(pb.RedeemRequest(item_id=item.item_id, quantity=2, idempotency_key="k-2"), metadata=me,
                        timeout=10)
        towel = stub.CreateStoreItem(pb.CreateStoreItemRequest(unit_id=station.unit_id, name="毛巾", price_points=5,
                                                               stock=1), metadata=admin, timeout=5).item
        with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="out of stock"):  # affordable, but 2 > 1
            stub.Redeem(pb.RedeemRequest(item_id=towel.item_id, quantity=2, idempotency_key="k-3"), metadata=me,
                        timeout=10)
        stocks = lambda: {i.name: i.stock for i in stub.ListStoreItems(  # noqa: E731
            pb.ListStoreItemsRequest(unit_id=station.unit_id), metadata=me, timeout=5).items}
        stock = lambda: stocks()["洗衣液"]  # noqa: E731
        # the refused ones took nothing: the sold-out attempt's debit was undone
        assert stocks() == {"洗衣液": 3, "毛巾": 1} and _points(stub, me) == 40

        collected = stub.CollectRedemption(pb.CollectRedemptionRequest(code=first.code.lower()), metadata=admin,
                                           timeout=5).redemption
        assert collected.status == pb.REDEMPTION_STATUS_COLLECTED
        with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="not yet handed over"):
            stub.RefundRedemption(pb.RefundRedemptionRequest(redemption_id=first.redemption_id, reason="退货"),
                                  metadata=admin, timeout=5)
        second = stub.Redeem(pb.RedeemRequest(item_id=item.item_id, quantity=1, idempotency_key="k-4"), metadata=me,
                             timeout=10).redemption
        refunded = stub.RefundRedemption(pb.RefundRedemptionRequest(redemption_id=second.redemption_id,
                                                                    reason="商品破损，退还积分"),
                                         metadata=admin, timeout=10).redemption
        assert refunded.status == pb.REDEMPTION_STATUS_REFUNDED and refunded.refund_reason == "商品破损，退还积分"
        assert _points(stub, me) == 40 and stock() == 3
        kinds = [e.kind for e in stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(book=pb.BOOK_POINTS),
                                                        metadata=me, timeout=5).entries]
        # two redemptions, one refund, and the sold-out attempt's debit with its undo
        assert kinds.count(pb.ENTRY_KIND_REDEMPTION) == 3 and kinds.count(pb.ENTRY_KIND_REFUND) == 2
        mine = stub.ListRedemptions(pb.ListRedemptionsRequest(), metadata=me, timeout=5).redemptions
        assert {r.status for r in mine} == {pb.REDEMPTION_STATUS_COLLECTED, pb.REDEMPTION_STATUS_REFUNDED,
                                            pb.REDEMPTION_STATUS_FAILED}

        def announced() -> tuple[int, int]:
            events = tap.events(module_district.id)
            return (sum(isinstance(p, pev.ItemRedeemed) for _, p, _ in events),
                    sum(isinstance(p, pev.RedemptionRefunded) for _, p, _ in events))
        # the district's other events (balances, stock) come too, in any order
        assert wait_until(lambda: announced() == (2, 1), 15), announced()
    finally:
        tap.close()


def test_200_parallel_redemptions_never_oversell_or_overdraw(module_district, tree, stub, feed, stack, points_db):
    """Stock 50, price 10; 40 volunteers able to afford 3, 2, 1 or 0 each send 5 at once."""
    d, station = module_district.id, tree.stations[1]
    admin = bearer(tree.admins[station.unit_id])
    run = uuid.uuid4().hex[:6]
    groups = {30: [], 20: [], 10: [], 0: []}
    for n in range(40):
        groups[[30, 20, 10, 0][n % 4]].append(f"vol_{run}{n:02d}")
    for points, ids in groups.items():
        if points:
            fund(feed, d, tree, ids, points * 6)  # 6 minutes per point
    funded = [v for ids in list(groups.values())[:3] for v in ids]
    tokens = {v: token_for(stack, volunteer_principal(d, v, tree.courtyards[2])) for ids in groups.values() for v in ids}
    assert wait_until(lambda: points_db.accounts.count_documents({"_id": {"$in": funded}, "points": {"$gt": 0}}) == 30,
                      40)
    item = stub.CreateStoreItem(pb.CreateStoreItemRequest(unit_id=station.unit_id, name="大米", price_points=10,
                                                          stock=50, description="五常大米 5kg"),
                                metadata=admin, timeout=5).item
    attempts = [(v, f"{v}-{i}") for v in tokens for i in range(5)]

    def redeem(attempt):
        volunteer, key = attempt
        try:
            r = stub.Redeem(pb.RedeemRequest(item_id=item.item_id, quantity=1, idempotency_key=key),
                            metadata=tokens[volunteer], timeout=60).redemption
            return volunteer, r.redemption_id
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
            return volunteer, None

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(redeem, attempts))
    wins = [(v, rid) for v, rid in results if rid]
    per_volunteer = Counter(v for v, _ in wins)
    assert len(wins) == 50  # demand (60 affordable) exceeds the stock: exactly the stock is sold
    stored = points_db.store_items.find_one({"_id": item.item_id})
    assert stored["stock"] == 0 and stored["holds"] == []
    for points, ids in groups.items():
        for v in ids:
            assert per_volunteer[v] <= points // 10
            account = points_db.accounts.find_one({"_id": v}) or {"points": 0}  # a refused debit may open it
            assert account["points"] == points - 10 * per_volunteer[v] >= 0
    # every success cost exactly one debit; a debit of a redemption that found the stock gone was undone
    net: Counter = Counter()
    for e in points_db.ledger_entries.find({"account_id": {"$in": list(tokens)}, "_id": {"$regex": "^red:"}}):
        net[e["_id"].split(":")[1]] += e["amount"]
    won = {rid for _, rid in wins}
    assert {rid for rid, amount in net.items() if amount} == won and all(net[rid] == -10 for rid in won)
    failed = points_db.redemptions.count_documents({"item_id": item.item_id, "status": pb.REDEMPTION_STATUS_FAILED})
    assert failed == 200 - 50
    for v in funded:  # balances equal the sum of the entries
        total = sum(e["amount"] for e in points_db.ledger_entries.find({"account_id": v, "book": pb.BOOK_POINTS}))
        assert points_db.accounts.find_one({"_id": v})["points"] == total


def test_a_restock_retried_with_its_key_adds_its_stock_once(tree, stub, points_db):
    station, admin = tree.stations[0], bearer(tree.admins[tree.stations[0].unit_id])
    item = stub.CreateStoreItem(pb.CreateStoreItemRequest(unit_id=station.unit_id, name="大米", price_points=20,
                                                          stock=0), metadata=admin, timeout=5).item
    asked = pb.RestockStoreItemRequest(item_id=item.item_id, quantity=4, idempotency_key=f"rs-{uuid.uuid4().hex}")
    first = stub.RestockStoreItem(asked, metadata=admin, timeout=5).item
    assert first.stock == 4
    assert stub.RestockStoreItem(asked, metadata=admin, timeout=5).item == first
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="idempotency_key"):
        stub.RestockStoreItem(pb.RestockStoreItemRequest(item_id=item.item_id, quantity=5,
                                                         idempotency_key=asked.idempotency_key),
                              metadata=admin, timeout=5)

    # concurrent duplicates, plain and donated (捐赠): one of each adds its stock
    plain = pb.RestockStoreItemRequest(item_id=item.item_id, quantity=2, idempotency_key=f"rs-{uuid.uuid4().hex}")
    donated = pb.RestockStoreItemRequest(item_id=item.item_id, quantity=3, source=pb.STOCK_SOURCE_CHARITY_STORE,
                                         donor_name="凉州区慈善超市", idempotency_key=f"rs-{uuid.uuid4().hex}")
    for raced, stock, donated_stock in ((plain, 6, 0), (donated, 9, 3)):
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda r: stub.RestockStoreItem(r, metadata=admin, timeout=10).item,
                                    [raced, raced]))
        assert answers[0] == answers[1]
        assert (answers[0].stock, answers[0].donated_stock) == (stock, donated_stock)

    # without a key each call adds (as before keys); the item keeps its last keys only
    for _ in range(2):
        stub.RestockStoreItem(pb.RestockStoreItemRequest(item_id=item.item_id, quantity=1), metadata=admin, timeout=5)
    for n in range(RESTOCK_KEYS_KEPT):
        stub.RestockStoreItem(pb.RestockStoreItemRequest(item_id=item.item_id, quantity=1,
                                                         idempotency_key=f"rs-{n}-{uuid.uuid4().hex}"),
                              metadata=admin, timeout=5)
    stored = points_db.store_items.find_one({"_id": item.item_id})
    assert (stored["stock"], len(stored["restock_keys"]), len(stored["restocks"])) == \
        (9 + 2 + RESTOCK_KEYS_KEPT, RESTOCK_KEYS_KEPT, RESTOCK_KEYS_KEPT)
    assert asked.idempotency_key not in str(stored["restocks"])
