"""The points store (积分超市 / 爱心超市): items per unit, redemptions, refunds, collection.

A redemption is all-or-nothing across the account's balance, the item's stock and the ledger,
without transactions. The redemption document comes first (its idempotency key is unique, so a
retry finds it); then the points are debited as a guarded ledger posting (never below zero);
then the stock is taken with a conditional update that records the redemption id in the item's
`holds` (a repeated step is a no-op); if the stock is gone the debit is undone by a reversing
entry. Completing the redemption (status COMPLETED + ItemRedeemed, one write) is the commit; the
hold is dropped last. Debiting before taking stock means stock is only ever taken by a
redemption that will complete, so when demand exceeds supply exactly the stock is sold (the
other order lost sales to holds of redemptions whose debit then failed).
A crash anywhere leaves a PENDING redemption. Once its owner is known dead (owners.py) or it is
older than any request can take, recovery forgets it when nothing was debited (the key may be
used again) and otherwise carries it on: stock taken and COMPLETED, or the debit undone when the
stock is gone. A retry with the key carries it on at once (the client asked for it again).
"""
from __future__ import annotations

import datetime as dt
import re
import secrets
import logging
import time

from prometheus_client import Counter
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role
from services.common.checkin import UNAMBIGUOUS as CODE_ALPHABET
from services.common.clock import as_utc, clock
from services.common.errors import (
    Aborted, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unavailable,
)
from services.common.events import EventSource, to_timestamp
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.listing import key as listing_key
from services.common.outbox import insert_with_events, update_with_events
from services.common.validation import Validator
from wenming.points.v1 import events_pb2
from wenming.points.v1 import points_pb2 as pb

from . import crashpoints, perk_rules
from .directory import Directory
from .earning import Cause, EntrySpec
from .ledger import OWNER_DEADLINE_SECONDS, SETTLING, Ledger, entry_document
from .models import Redemption, StoreItem
from .perks import Perks
from .rules import STAR_LEVELS

S, K, B, E = pb.RedemptionStatus, pb.AccountKind, pb.Book, pb.EntryKind
CODE = re.compile(r"^[2-9A-HJ-NP-Z]{8}$")
ITEM_FIELDS = {"name", "description", "price_points", "active", "merchant_id", "min_star_level"}
DONATED = (pb.STOCK_SOURCE_MERCHANT, pb.STOCK_SOURCE_CHARITY_STORE)
MAX_QUANTITY = 20
ITEM_VIEW = {"holds": 0, "outbox": 0, "restock_keys": 0, "restocks": 0}
# keyed restocks an item remembers: a retry comes within minutes, long before 20 more restocks
RESTOCK_KEYS_KEPT = 20

log = logging.getLogger(__name__)

REDEMPTIONS = Counter("points_redemptions_total", "Points store redemptions by outcome", ["result"])
DISCOUNTED = Counter("points_redemptions_discounted_total", "Redemptions charged a 礼遇 discount, by per cent",
                     ["discount_percent"])
DONATIONS = Counter("points_stock_donated_total", "Pieces of stock donated (捐赠) to store items, by source",
                    ["source"])


def _code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))


class Store:
    def __init__(self, ledger: Ledger, directory: Directory, events: EventSource, perks: Perks):
        self.ledger = ledger
        self.directory = directory
        self.events = events
        self.perks = perks
        self.items = StoreItem._get_collection()
        self.redemptions = Redemption.collection()

    # ---- items ----

    def _item(self, principal: Principal, item_id: str, field: str = "item_id") -> dict:
        v = Validator()
        item_id = v.ident(field, item_id)
        v.check()
        item = self.items.find_one({"_id": item_id, "district_id": principal.district_id}, {"outbox": 0})
        if item is None:
            raise NotFound("store item", item_id)
        return item

    def create_item(self, principal: Principal, req: pb.CreateStoreItemRequest) -> dict:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id)
        name = v.text("name", req.name, max_len=40)
        description = v.text("description", req.description, max_len=200, required=False, multiline=True)
        v.int_range("price_points", req.price_points, 1, 100_000)
        v.int_range("stock", req.stock, 0, 100_000)
        merchant_id = v.ident("merchant_id", req.merchant_id, required=False)
        v.int_range("min_star_level", req.min_star_level, 0, STAR_LEVELS)
        v.check()
        unit = self.directory.managed_unit(principal, unit_id, "store's unit")
        item = {"_id": new_id("item"), "district_id": principal.district_id, "unit_id": unit["_id"],
                "unit_path": unit["path"], "unit_name": unit["name"], "unit_level": unit["level"], "name": name,
                "description": description, "price_points": req.price_points, "stock": req.stock, "active": True,
                "holds": [], "version": 1, "created_at": clock.now(),
                **self._offered_by(principal, merchant_id, unit["path"]), "min_star_level": req.min_star_level,
                "donated_stock": 0}
        self.items.insert_one(item)
        return item

    def update_item(self, principal: Principal, req: pb.UpdateStoreItemRequest) -> dict:
        v = Validator()
        fields = v.update_fields("update_fields", req.update_fields, ITEM_FIELDS)
        changes: dict = {}
        if "name" in fields:
            changes["name"] = v.text("name", req.name, max_len=40)
        if "description" in fields:
            changes["description"] = v.text("description", req.description, max_len=200, required=False,
                                             multiline=True)
        if "price_points" in fields:
            changes["price_points"] = v.int_range("price_points", req.price_points, 1, 100_000)
        if "active" in fields:
            changes["active"] = req.active
        merchant_id = v.ident("merchant_id", req.merchant_id, required=False) if "merchant_id" in fields else ""
        if "min_star_level" in fields:
            changes["min_star_level"] = v.int_range("min_star_level", req.min_star_level, 0, STAR_LEVELS)
        if req.expected_version < 0:
            v.fail("expected_version", "must not be negative")
        v.check()
        item = self._item(principal, req.item_id)
        self.directory.managed_unit(principal, item["unit_id"], "store's unit")
        if "merchant_id" in fields:
            changes.update(self._offered_by(principal, merchant_id, item["unit_path"]))
        version = req.expected_version or item["version"]
        after = self.items.find_one_and_update({"_id": item["_id"], "version": version},
                                               {"$set": changes, "$inc": {"version": 1}},
                                               return_document=ReturnDocument.AFTER)
        if after is None:
            raise FailedPrecondition("the item changed since you read it (version mismatch); reload and retry")
        return after

    def _offered_by(self, principal: Principal, merchant_id: str, unit_path) -> dict:
        """The item's merchant fields: none, or an active merchant of the store's unit or above."""
        if not merchant_id:
            return {"merchant_id": "", "merchant_name": ""}
        merchant = perk_rules.require_offerable(self.perks.merchant(principal.district_id, merchant_id), unit_path)
        return {"merchant_id": merchant["_id"], "merchant_name": merchant["name"]}

    def restock(self, principal: Principal, req: pb.RestockStoreItemRequest) -> dict:
        """Adds stock; donated stock (捐赠) is recorded with its donor, who recorded it and when,
        in the same write as the stock (StockDonated in the item's outbox).

        With an idempotency key the restock is remembered in the item: its key in `restock_keys`
        and what it asked in `restocks`, pushed by the same conditional update that adds the stock
        and only where the key is not there yet (a list of strings: on FerretDB v1 `restocks.key`
        $ne k still matches an item whose `restocks` hold k beside another key). One atomic write, so a crash never leaves stock added without its
        key or the reverse (no transactions, and a journal elsewhere would need a recovery). A retry
        gets the item as it stands; the list keeps the last RESTOCK_KEYS_KEPT keys."""
        v = Validator()
        v.int_range("quantity", req.quantity, 1, 100_000)
        source = v.enum("source", req.source, pb.StockSource, required=False)
        donor_merchant_id = donor_name = ""
        if source == pb.STOCK_SOURCE_MERCHANT:
            donor_merchant_id = v.ident("donor_merchant_id", req.donor_merchant_id)
        elif source == pb.STOCK_SOURCE_CHARITY_STORE:
            donor_name = v.text("donor_name", req.donor_name, min_len=2, max_len=40)
        idempotency_key = v.idempotency_key(req.idempotency_key) if req.idempotency_key else ""
        v.check()
        item = self._item(principal, req.item_id)
        self.directory.managed_unit(principal, item["unit_id"], "store's unit")
        keyed = {"key": listing_key(principal.district_id, principal.subject, idempotency_key), "item_id": item["_id"],
                 "quantity": req.quantity, "source": source, "donor_merchant_id": donor_merchant_id,
                 "donor_name": donor_name} if idempotency_key else None
        unseen: dict = {}  # the write's filter: the key not applied yet
        remember: dict = {}  # and its update: the key applied
        if keyed is not None:
            replayed = self._replayed_restock(principal.district_id, keyed)
            if replayed is not None:
                return replayed
            unseen = {"restock_keys": {"$ne": keyed["key"]}}
            remember = {"$push": {"restock_keys": keyed["key"], "restocks": keyed}}
        if source not in DONATED:
            after = self.items.find_one_and_update({"_id": item["_id"], **unseen},
                                                   {"$inc": {"stock": req.quantity, "version": 1},
                                                    **remember},
                                                   return_document=ReturnDocument.AFTER)
            return self._restocked(principal.district_id, keyed, after)
        if donor_merchant_id:
            merchant = self.perks.merchant(principal.district_id, donor_merchant_id)
            if merchant is None:
                raise InvalidArgument.field("donor_merchant_id", "is not a merchant of this district")
            donor_name = merchant["name"]
        now = clock.now_as_stored()
        event = self.events.new(
            events_pb2.StockDonated(item_id=item["_id"], unit_id=item["unit_id"], quantity=req.quantity, source=source,
                                    donor_merchant_id=donor_merchant_id, donor_name=donor_name,
                                    recorded_by=principal.subject, recorded_at=to_timestamp(now)),
            district_id=principal.district_id, aggregate_type="store_item", aggregate_id=item["_id"],
            version=item["version"] + 1, actor_id=principal.subject)
        after = update_with_events(self.items, {"_id": item["_id"], "version": item["version"],
                                                **unseen},
                                   {"$inc": {"stock": req.quantity, "donated_stock": req.quantity},
                                    "$set": {"last_donation": {"source": source, "donor_merchant_id": donor_merchant_id,
                                                               "donor_name": donor_name, "quantity": req.quantity,
                                                               "recorded_by": principal.subject, "recorded_at": now}},
                                    **remember},
                                   [event])
        restocked = self._restocked(principal.district_id, keyed, after)
        if after is not None:
            DONATIONS.labels(pb.StockSource.Name(source)).inc(req.quantity)
        return restocked

    def _restocked(self, district_id: str, keyed: dict | None, after: dict | None) -> dict:
        """The answer to a restock write: the item it changed (its oldest keys beyond
        RESTOCK_KEYS_KEPT dropped, a separate write: a dropped key only forgets an old restock),
        or the first outcome when a concurrent retry with the key won."""
        if after is None:
            replayed = self._replayed_restock(district_id, keyed) if keyed is not None else None
            if replayed is None:
                raise Aborted("该物品刚被修改，请重试")
            return replayed
        if keyed is not None:
            self.items.update_one({"_id": after["_id"], f"restock_keys.{RESTOCK_KEYS_KEPT}": {"$exists": True}},
                                  {"$pop": {"restock_keys": -1, "restocks": -1}})
        return after

    def _replayed_restock(self, district_id: str, keyed: dict) -> dict | None:
        """The item a restock with this key changed, None when there is none; refused when the
        key was used for another restock."""
        item = self.items.find_one({"district_id": district_id, "restock_keys": keyed["key"]}, {"outbox": 0})
        if item is None:
            return None
        if keyed not in item["restocks"]:
            raise InvalidArgument.field("idempotency_key", "已用于另一次补货")
        return item

    def list_items(self, principal: Principal, req: pb.ListStoreItemsRequest) -> tuple[list[dict], str]:
        v = Validator()
        unit_id = v.unit_or_own("unit_id", req.unit_id, principal.unit_id)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        unit = self.directory.unit(principal.district_id, unit_id)
        query: dict = {"district_id": principal.district_id, "unit_id": unit["_id"]}
        if req.include_inactive:
            self.directory.managed_unit(principal, unit["_id"], "store's unit")
        else:
            query["active"] = True
        if after:
            query["_id"] = {"$gt": after}
        found = list(self.items.find(query, ITEM_VIEW).sort("_id", 1).limit(size + 1))
        token = encode_page_token(found[size - 1]["_id"]) if len(found) > size else ""
        return found[:size], token

    def prices_for(self, principal: Principal, items: list[dict]) -> tuple[int, dict[str, perk_rules.Price]]:
        """The caller's stars and what each item costs them per piece (their 礼遇 discount):
        volunteers only (no prices for others)."""
        if principal.role != Role.ROLE_VOLUNTEER:
            return 0, {}
        stars = self.perks.star_level(principal)
        rules, _ = self.perks.for_district(principal.district_id)
        return stars, {i["_id"]: perk_rules.price(i["price_points"], stars, rules, i.get("merchant_id", ""))
                       for i in items}

    # ---- redemptions ----

    def redeem(self, principal: Principal, req: pb.RedeemRequest) -> dict:
        v = Validator()
        item_id = v.ident("item_id", req.item_id)
        v.int_range("quantity", req.quantity, 1, MAX_QUANTITY)
        key = v.idempotency_key(req.idempotency_key)
        v.check()
        if principal.role not in (Role.ROLE_VOLUNTEER, Role.ROLE_RESIDENT):
            raise PermissionDenied("only volunteers and residents redeem their own points")
        account_id, kind = self.directory.own_account(principal)
        replayed = self._replayed(principal.district_id, account_id, key, item_id, req.quantity)
        if replayed is not None:
            return replayed
        item = self._item(principal, item_id)
        if not item["active"]:
            raise FailedPrecondition("this item is no longer offered")
        stars = self.perks.star_level(principal)
        perk_rules.require_stars(item.get("min_star_level", 0), stars)
        if item.get("merchant_id"):
            merchant = self.perks.merchant(principal.district_id, item["merchant_id"])
            if merchant is not None:
                perk_rules.require_active(merchant)
        rules, _ = self.perks.for_district(principal.district_id)
        price = perk_rules.price(item["price_points"], stars, rules, item.get("merchant_id", ""))
        now = clock.now()
        redemption = {"_id": new_id("red"), "district_id": principal.district_id, "account_id": account_id,
                      "account_kind": kind, "item_id": item["_id"], "item_name": item["name"],
                      "unit_id": item["unit_id"], "unit_path": item["unit_path"], "unit_name": item["unit_name"],
                      "unit_level": item["unit_level"], "quantity": req.quantity,
                      "cost_points": price.points * req.quantity, "list_price_points": price.list_points,
                      "discount_percent": price.discount_percent, "status": S.REDEMPTION_STATUS_PENDING,
                      "idempotency_key": key, "failure_reason": "", "refund_reason": "",
                      "owner": self.ledger.owners.id, "created_at": now}
        for _ in range(3):
            try:
                insert_with_events(self.redemptions, {**redemption, "code": _code()}, [])
                break
            except DuplicateKeyError:
                # the index is not named on FerretDB: a concurrent retry with the key, or a code clash
                replayed = self._replayed(principal.district_id, account_id, key, item_id, req.quantity)
                if replayed is not None:
                    return replayed
        else:
            raise Unavailable("could not allocate a redemption code; retry")
        crashpoints.reached("redemption.created")
        return self._pay(redemption, time.monotonic())

    def _replayed(self, district_id: str, account_id: str, key: str, item_id: str, quantity: int) -> dict | None:
        """The outcome of the earlier redemption with this key, once there is one: one in
        progress is waited for, or carried on here when its owner died. None when there is none
        (or recovery forgot it: nothing was debited)."""
        for _ in SETTLING.attempts():
            existing = self.redemptions.find_one({"district_id": district_id, "account_id": account_id,
                                                  "idempotency_key": key}, {"outbox": 0})
            if existing is None:
                return None
            if (existing["item_id"], existing["quantity"]) != (item_id, quantity):
                raise InvalidArgument.field("idempotency_key", "was already used for a different redemption")
            if existing["status"] == S.REDEMPTION_STATUS_FAILED:
                raise FailedPrecondition(existing["failure_reason"])
            if existing["status"] != S.REDEMPTION_STATUS_PENDING:
                return existing
            if self.ledger.owners.dead([existing.get("owner", "")]) and self._take_over(existing):
                return self._pay(existing, time.monotonic())
        raise Aborted("this redemption is still being processed; retry shortly")

    def _take_over(self, redemption: dict) -> bool:
        """Makes this process the owner of a PENDING redemption whose owner is gone (one taker wins)."""
        taken = self.redemptions.update_one(
            {"_id": redemption["_id"], "status": S.REDEMPTION_STATUS_PENDING, "owner": redemption.get("owner")},
            {"$set": {"owner": self.ledger.owners.id}})
        return taken.matched_count == 1

    def _pay(self, redemption: dict, started: float) -> dict:
        """Debit, stock, completion; each step a no-op when done before (a taken-over redemption)."""
        rid, quantity = redemption["_id"], redemption["quantity"]
        try:
            self.ledger.post(self._debit_entry(redemption), guard=True)
        except FailedPrecondition as exc:
            self._mark_failed(redemption, str(exc), "insufficient_points")
            raise
        crashpoints.reached("redemption.debited")
        if time.monotonic() - started > OWNER_DEADLINE_SECONDS:
            # past this point the recovery job may act on it: leave nothing half-done
            self._undo_debit(redemption)
            self._mark_failed(redemption, "interrupted: the request took too long; the points were returned",
                              "interrupted")
            raise Unavailable("the store is slow to answer; your points were returned, retry with a new key")
        taken = self.items.update_one(
            {"_id": redemption["item_id"], "active": True, "stock": {"$gte": quantity}, "holds": {"$ne": rid}},
            {"$inc": {"stock": -quantity}, "$push": {"holds": rid}})
        if taken.matched_count == 0 and not self.items.count_documents({"_id": redemption["item_id"], "holds": rid}):
            self._undo_debit(redemption)
            self._mark_failed(redemption, "out of stock", "out_of_stock")
            raise FailedPrecondition("out of stock")
        crashpoints.reached("redemption.stocked")
        return self._complete(redemption)

    def _undo_debit(self, redemption: dict) -> None:
        """Gives the points back with a reversing entry (once: the entry's key is unique)."""
        self.ledger.post(self._entry(redemption, "undo", E.ENTRY_KIND_REFUND, redemption["cost_points"],
                                     "redemption not completed"), guard=False)

    def _debit_entry(self, redemption: dict) -> dict:
        return self._entry(redemption, "debit", E.ENTRY_KIND_REDEMPTION, -redemption["cost_points"])

    def _entry(self, redemption: dict, step: str, kind: int, amount: int, reason: str = "",
               actor_id: str = "") -> dict:
        cause = Cause("Redeem", redemption["_id"], "", redemption["item_name"], 0, clock.now())
        spec = EntrySpec(f"red:{redemption['_id']}:{step}", redemption["account_id"], redemption["account_kind"],
                         B.BOOK_POINTS, kind, amount, cause, redemption["unit_id"], tuple(redemption["unit_path"]),
                         earning=False)
        return entry_document(spec, redemption["district_id"], reason=reason, actor_id=actor_id)

    def _mark_failed(self, redemption: dict, reason: str, result: str) -> None:
        self.redemptions.update_one({"_id": redemption["_id"], "status": S.REDEMPTION_STATUS_PENDING},
                                    {"$set": {"status": S.REDEMPTION_STATUS_FAILED, "failure_reason": reason},
                                     "$inc": {"version": 1}})
        REDEMPTIONS.labels(result).inc()

    def _complete(self, redemption: dict) -> dict:
        r = redemption
        event = self.events.new(
            events_pb2.ItemRedeemed(redemption_id=r["_id"], account_id=r["account_id"], account_kind=r["account_kind"],
                                    item_id=r["item_id"], unit_id=r["unit_id"], quantity=r["quantity"],
                                    # a redemption started before 礼遇 existed has neither (recovery ends it)
                                    cost_points=r["cost_points"], list_price_points=r.get("list_price_points", 0),
                                    discount_percent=r.get("discount_percent", 0)),
            district_id=r["district_id"], aggregate_type="redemption", aggregate_id=r["_id"], version=2,
            actor_id=r["account_id"])
        after = update_with_events(self.redemptions, {"_id": r["_id"], "status": S.REDEMPTION_STATUS_PENDING},
                                   {"$set": {"status": S.REDEMPTION_STATUS_COMPLETED, "completed_at": clock.now()}},
                                   [event])
        crashpoints.reached("redemption.completed")
        self.items.update_one({"_id": r["item_id"]}, {"$pullAll": {"holds": [r["_id"]]}})
        if after is None:  # recovery completed it meanwhile
            return self.redemptions.find_one({"_id": r["_id"]}, {"outbox": 0})
        REDEMPTIONS.labels("completed").inc()
        if r.get("discount_percent"):
            DISCOUNTED.labels(str(r["discount_percent"])).inc()
        return after

    def _load(self, principal: Principal, redemption_id: str) -> dict:
        v = Validator()
        redemption_id = v.ident("redemption_id", redemption_id)
        v.check()
        found = self.redemptions.find_one({"_id": redemption_id, "district_id": principal.district_id},
                                          {"outbox": 0})
        if found is None:
            raise NotFound("redemption", redemption_id)
        return found

    def _require_store_admin(self, principal: Principal, redemption: dict) -> None:
        if principal.role not in (Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE) or \
                not principal.manages(redemption["unit_path"]):
            raise PermissionDenied("only an admin of the store's unit may do this")

    def get(self, principal: Principal, redemption_id: str) -> dict:
        redemption = self._load(principal, redemption_id)
        if redemption["account_id"] != principal.subject:
            self._require_store_admin(principal, redemption)
        return redemption

    def list(self, principal: Principal, req: pb.ListRedemptionsRequest) -> tuple[list[dict], str]:
        v = Validator()
        account_id = v.ident("account_id", req.account_id, required=False)
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        if account_id and unit_id:
            v.fail("unit_id", "give account_id or unit_id, not both")
        v.enum("status", req.status, pb.RedemptionStatus, required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        query: dict = {"district_id": principal.district_id}
        if unit_id:
            unit = self.directory.managed_unit(principal, unit_id, "store's unit")
            query["unit_path"] = unit["_id"]
        else:
            account_id = account_id or self.directory.own_account(principal)[0]
            self.directory.readable(principal, account_id)
            query["account_id"] = account_id
        if req.status:
            query["status"] = req.status
        if after:
            query["_id"] = {"$lt": after}
        found = list(self.redemptions.find(query, {"outbox": 0}).sort("_id", -1).limit(size + 1))
        token = encode_page_token(found[size - 1]["_id"]) if len(found) > size else ""
        return found[:size], token

    def collect(self, principal: Principal, code: str) -> dict:
        v = Validator()
        code = v.regex("code", (code or "").strip().upper(), CODE, "must be the 8-character redemption code")
        v.check()
        redemption = self.redemptions.find_one({"district_id": principal.district_id, "code": code}, {"outbox": 0})
        if redemption is None:
            raise NotFound("redemption code", code)
        self._require_store_admin(principal, redemption)
        if redemption["status"] != S.REDEMPTION_STATUS_COMPLETED:
            raise FailedPrecondition(f"the redemption is {S.Name(redemption['status'])}; only a COMPLETED one "
                                     "can be handed over")
        after = self.redemptions.find_one_and_update(
            {"_id": redemption["_id"], "status": S.REDEMPTION_STATUS_COMPLETED},
            {"$set": {"status": S.REDEMPTION_STATUS_COLLECTED, "collected_at": clock.now(),
                      "collected_by": principal.subject}, "$inc": {"version": 1}}, return_document=ReturnDocument.AFTER)
        if after is None:
            raise FailedPrecondition("the redemption changed meanwhile; reload and retry")
        REDEMPTIONS.labels("collected").inc()
        return after

    def refund(self, principal: Principal, redemption_id: str, reason: str) -> dict:
        v = Validator()
        reason = v.text("reason", reason, max_len=200)
        v.check()
        redemption = self._load(principal, redemption_id)
        self._require_store_admin(principal, redemption)
        if redemption["status"] != S.REDEMPTION_STATUS_COMPLETED:
            raise FailedPrecondition(f"the redemption is {S.Name(redemption['status'])}; only a COMPLETED one "
                                     "(not yet handed over) can be refunded")
        started = self.redemptions.find_one_and_update(
            {"_id": redemption["_id"], "status": S.REDEMPTION_STATUS_COMPLETED},
            {"$set": {"status": S.REDEMPTION_STATUS_REFUNDING, "refund_reason": reason,
                      "refunded_by": principal.subject}, "$inc": {"version": 1}}, return_document=ReturnDocument.AFTER)
        if started is None:
            raise FailedPrecondition("the redemption changed meanwhile; reload and retry")
        return self._finish_refund(started)

    def _finish_refund(self, redemption: dict) -> dict:
        r = redemption
        self.ledger.post(self._entry(r, "refund", E.ENTRY_KIND_REFUND, r["cost_points"], r["refund_reason"],
                                     r.get("refunded_by", "")), guard=False)
        hold = f"refund:{r['_id']}"
        self.items.update_one({"_id": r["item_id"], "holds": {"$ne": hold}},
                              {"$inc": {"stock": r["quantity"]}, "$push": {"holds": hold}})
        event = self.events.new(
            events_pb2.RedemptionRefunded(redemption_id=r["_id"], account_id=r["account_id"], item_id=r["item_id"],
                                          quantity=r["quantity"], cost_points=r["cost_points"],
                                          reason=r["refund_reason"]),
            district_id=r["district_id"], aggregate_type="redemption", aggregate_id=r["_id"],
            version=r["version"] + 1, actor_id=r.get("refunded_by", ""))
        after = update_with_events(self.redemptions, {"_id": r["_id"], "status": S.REDEMPTION_STATUS_REFUNDING},
                                   {"$set": {"status": S.REDEMPTION_STATUS_REFUNDED, "refunded_at": clock.now()}},
                                   [event])
        self.items.update_one({"_id": r["item_id"]}, {"$pullAll": {"holds": [hold]}})
        if after is None:
            return self.redemptions.find_one({"_id": r["_id"]}, {"outbox": 0})
        REDEMPTIONS.labels("refunded").inc()
        return after

    # ---- recovery ----

    def recover(self, older_than_seconds: float) -> int:
        """Ends the redemptions a crash left PENDING (owner dead, or older than any request),
        finishes refunds, drops holds left behind."""
        cutoff = clock.now() - dt.timedelta(seconds=older_than_seconds)
        done = 0
        pending = list(self.redemptions.find({"status": S.REDEMPTION_STATUS_PENDING}, {"outbox": 0}))
        dead = self.ledger.owners.dead(r.get("owner", "") for r in pending)
        for r in pending:
            if r.get("owner") not in dead and as_utc(r["created_at"]) >= cutoff:
                continue  # its owner may still be working on it
            state = self.ledger.journal_state(f"red:{r['_id']}:debit")
            if state == "PENDING":
                continue  # the ledger's own recovery settles the debit first
            if state is None:  # nothing debited, no stock taken, no event: as if never asked
                log.warning("forgetting redemption %s interrupted before its debit", r["_id"])
                self.redemptions.delete_one({"_id": r["_id"], "status": S.REDEMPTION_STATUS_PENDING,
                                             "owner": r.get("owner")})
            elif self._take_over(r):
                log.warning("carrying on interrupted redemption %s", r["_id"])
                try:
                    self._pay(r, time.monotonic())
                except FailedPrecondition:
                    pass  # not enough points or out of stock: marked FAILED, nothing kept
            done += 1
        for r in self.redemptions.find({"status": S.REDEMPTION_STATUS_REFUNDING, "created_at": {"$lt": cutoff}},
                                       {"outbox": 0}):
            self._finish_refund(r)
            done += 1
        return done

    def drop_stale_holds(self) -> int:
        """Drops holds a crash left after the redemption reached its final state: nothing takes
        or gives back stock for a final redemption, so its hold has no more use (harmless but
        untidy; a scan of the items, so not on every recovery pass)."""
        done = 0
        for item in self.items.find({"holds.0": {"$exists": True}}, {"holds": 1}):
            for hold in item["holds"]:
                r = self.redemptions.find_one({"_id": hold.removeprefix("refund:")}, {"status": 1})
                if r is None or r["status"] not in (S.REDEMPTION_STATUS_PENDING, S.REDEMPTION_STATUS_REFUNDING):
                    self.items.update_one({"_id": item["_id"]}, {"$pullAll": {"holds": [hold]}})
                    done += 1
        return done
