"""Every RPC-side posting killed with SIGKILL at each of its steps (POINTS_CRASH_AT, crashpoints.py)
on a real points process: once a new process is SERVING, recovery ends the interrupted posting
exactly once within seconds (not after POINTS_RECOVERY_AFTER_SECONDS), a retry with the same key
sent at once gets the posting's outcome (no "still being applied"; a reversal's retry too, while
another key is told the entry is reversed), and the ledger holds: balances = Σ entries, nothing posted twice,
nothing negative, no key or hold left behind."""

from __future__ import annotations

import time
import uuid

import grpc
import pytest

from tests.points.support import account_known, points_stub
from tests.support.grpc_helpers import bearer, expect_error, or_not_found
from tests.support.registration import new_phone
from tests.support.waiting import wait_until
from wenming.points.v1 import points_pb2 as pb

PORT_OFFSET = 4
# kill → SERVING → ended: the killed process's owner lease (5 s) and job lease (6 s) run out
# within this, far below the 120 s recovery delay
RECOVERY_BOUND_SECONDS = 15
POSTING_STEPS = ("posting.journaled", "posting.applied", "posting.entered", "posting.unlisted")
REDEEM_STEPS = ("redemption.created", "posting.applied", "redemption.debited", "redemption.stocked",
                "redemption.completed")
CASES = [(rpc, step) for rpc in ("AddManualHours", "AdjustPoints", "ReverseEntry") for step in POSTING_STEPS] + \
        [("Redeem", step) for step in REDEEM_STEPS]
PRICE, STOCK = 7, 100


class Points:
    """The points service as a deployment would restart it: one process at a time on one port."""

    def __init__(self, stack):
        self.stack = stack
        self.proc = None

    def start(self, crash_at: str = ""):
        env = {"POINTS_CRASH_AT": crash_at} if crash_at else {}
        self.proc = self.stack.service("points", port_offset=PORT_OFFSET, extra_env=env,
                                       log_name=f"points-crash-{crash_at or 'ok'}")
        self.proc.start()
        self.proc.wait_serving(90)
        return points_stub(self.proc.grpc_target)

    def stop(self):
        if self.proc is not None:
            self.proc.stop()


@pytest.fixture(scope="module")
def service(stack, registration):
    points = Points(stack)
    yield points
    points.stop()


@pytest.fixture(scope="module")
def world(module_district, service, points_db_module):
    tree = module_district.small_tree()
    phone = new_phone()
    volunteer = module_district.volunteer(tree.courtyards[0].unit_id, phone=phone)
    admin = bearer(tree.admins[tree.stations[0].unit_id])
    stub = service.start()
    # points hears of the volunteer and the station through registration's events
    assert wait_until(lambda: account_known(stub, volunteer.volunteer_id, admin), 30)
    create = pb.CreateStoreItemRequest(unit_id=tree.stations[0].unit_id, name="肥皂", price_points=PRICE, stock=STOCK)
    item = wait_until(lambda: or_not_found(lambda: stub.CreateStoreItem(create, metadata=admin, timeout=10).item), 30)
    return {"vid": volunteer.volunteer_id, "admin": admin, "own": bearer(module_district.volunteer_token(phone)),
            "item": item.item_id}


@pytest.fixture(scope="module")
def points_db_module(stack, mongo_client):
    return mongo_client[f"{stack.db_prefix}points"]


def _request(rpc: str, world: dict, key: str, reversible: str):
    """(stub method name, request, metadata) of the posting under test."""
    if rpc == "AddManualHours":
        return pb.AddManualHoursRequest(volunteer_id=world["vid"], minutes=45, reason="补录", content="助老",
                                        idempotency_key=key), world["admin"]
    if rpc == "AdjustPoints":
        return pb.AdjustPointsRequest(account_id=world["vid"], amount=-3, reason="扣分", idempotency_key=key), \
            world["admin"]
    if rpc == "ReverseEntry":
        return pb.ReverseEntryRequest(entry_id=reversible, reason="冲正", idempotency_key=key), world["admin"]
    return pb.RedeemRequest(item_id=world["item"], quantity=1, idempotency_key=key), world["own"]


def _ended(db, world: dict) -> bool:
    """Nothing of the account in progress: no journal PENDING, no key listed, no redemption
    PENDING, no hold on the item."""
    return (db.ledger_postings.count_documents({"account_id": world["vid"], "state": "PENDING"}) == 0
            and not db.accounts.find_one({"_id": world["vid"]})["postings"]
            and db.redemptions.count_documents({"account_id": world["vid"], "status": pb.REDEMPTION_STATUS_PENDING}) == 0
            and not db.store_items.find_one({"_id": world["item"]})["holds"])


def _check_ledger(db, world: dict) -> None:
    account = db.accounts.find_one({"_id": world["vid"]})
    entries = list(db.ledger_entries.find({"account_id": world["vid"]}))
    for book, field in ((pb.BOOK_POINTS, "points"), (pb.BOOK_MANUAL_MINUTES, "manual_minutes")):
        assert account[field] == sum(e["amount"] for e in entries if e["book"] == book), field
        assert account[field] >= 0, field
    # one entry per posting: every RPC posting's entry id is its journal's, and each DONE once
    done = {j["_id"] for j in db.ledger_postings.find({"account_id": world["vid"], "state": "DONE"})}
    assert {e["_id"] for e in entries if e["_id"] in done} == done
    completed = db.redemptions.count_documents({"account_id": world["vid"], "status": pb.REDEMPTION_STATUS_COMPLETED})
    debits = [e for e in entries if e["kind"] == pb.ENTRY_KIND_REDEMPTION]
    refunds = [e for e in entries if e["kind"] == pb.ENTRY_KIND_REFUND]
    assert len(debits) - len(refunds) == completed
    assert db.store_items.find_one({"_id": world["item"]})["stock"] == STOCK - completed


@pytest.mark.parametrize(("rpc", "step"), CASES, ids=[f"{r}-{s}" for r, s in CASES])
def test_killed_at_each_step_recovers_at_once_and_the_retry_gets_the_outcome(rpc, step, service, world,
                                                                            points_db_module):
    db = points_db_module
    stub = points_stub(service.proc.grpc_target)
    # enough on the account for a debit, and an entry of its own to reverse (on a healthy process)
    funded = stub.AdjustPoints(pb.AdjustPointsRequest(account_id=world["vid"], amount=50, reason="奖励",
                                                      idempotency_key=f"fund-{uuid.uuid4().hex[:12]}"),
                               metadata=world["admin"], timeout=10)
    before = funded.account
    service.stop()

    key = f"crash-{uuid.uuid4().hex[:12]}"
    request, metadata = _request(rpc, world, key, funded.entry.entry_id)
    stub = service.start(crash_at=step)
    with expect_error(grpc.StatusCode.UNAVAILABLE):
        getattr(stub, rpc)(request, metadata=metadata, timeout=10)
    assert wait_until(lambda: service.proc.process.poll() is not None, 10), "the crash point was not reached"
    assert service.proc.process.returncode == -9

    stub = service.start()
    back = time.monotonic()
    # retried at once: the posting is in progress under a dead owner, or already ended by the
    # recovery pass at start; either way the retry gets its outcome
    reply = getattr(stub, rpc)(request, metadata=metadata, timeout=15)
    again = getattr(stub, rpc)(request, metadata=metadata, timeout=15)
    if rpc == "Redeem":
        assert reply.redemption.status == pb.REDEMPTION_STATUS_COMPLETED
        assert again.redemption.redemption_id == reply.redemption.redemption_id
    elif rpc == "ReverseEntry":
        assert reply.reversal.amount == -50 and again.reversal.entry_id == reply.reversal.entry_id
        # another caller's key, or none: the entry is reversed already
        for other in ("another-key", ""):
            with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="already been reversed"):
                stub.ReverseEntry(pb.ReverseEntryRequest(entry_id=request.entry_id, reason="冲正",
                                                         idempotency_key=other), metadata=metadata, timeout=15)
    else:
        assert again.entry.entry_id == reply.entry.entry_id and again.account == reply.account
    answered = time.monotonic() - back
    assert wait_until(lambda: _ended(db, world), RECOVERY_BOUND_SECONDS, 0.1), "not ended in time"
    print(f"{rpc} killed at {step}: retry answered {answered:.1f} s, all ended {time.monotonic() - back:.1f} s "
          "after SERVING")

    after = stub.GetAccount(pb.GetAccountRequest(account_id=world["vid"]), metadata=world["admin"], timeout=10).account
    change = {"AddManualHours": ("manual_minutes", 45), "AdjustPoints": ("points", -3),
              "ReverseEntry": ("points", -50), "Redeem": ("points", -PRICE)}[rpc]
    assert getattr(after, change[0]) - getattr(before, change[0]) == change[1]
    _check_ledger(db, world)
