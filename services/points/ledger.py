"""The ledgers: append-only entries, balances kept in step, stars.

Entries are the truth; an account's balances are their sum, kept on the account document so
reads and the points store's "never below zero" check are one document. Two ways in, both
crash-safe without multi-document transactions:

* Consumed events (the hot path, `apply_consumed`, a whole poll at a time): the batch's entries
  are inserted first (unique keys, so a replay inserts nothing), then each account's balances
  are incremented in ONE conditional update (version guard; all accounts' in one bulk write)
  that also records, per topic partition, the last offset it contains (`marks`); the entries
  are announced (PointsCredited, derived event ids) before the offsets are committed. A crash
  between the inserts and the increments re-delivers the batch: the entries are duplicates,
  the marks say which accounts still lack them, and only those are incremented.
* Postings from RPCs (`post`: manual hours, adjustments, reversals, store debits and refunds,
  expiry): a journal document is the idempotency gate; the account is incremented in one
  conditional update that also lists the posting key (and refuses to go below zero when
  guarded); then the entry is inserted, the key removed and the journal closed. Recovery
  finishes a posting whose owner died after the balance changed, and forgets one that died
  before; a retry with the posting's key does the same at once when the owner is dead
  (owners.py), so it gets the posting's outcome (docs/points.md has the whole argument).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from prometheus_client import Counter
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from services.common.auth import Principal, Role
from services.common.clock import as_utc, clock
from services.common.consumer import Outcome
from services.common.derived_events import derived_event, publish_and_wait
from services.common.errors import (
    Aborted, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unavailable,
)
from services.common.events import EventSource, to_timestamp
from services.common.ids import decode_page_token, encode_page_token, ulid
from services.common.outbox import update_with_events, with_events
from services.common.retry import LOST_RACE, Backoff, Retry
from services.common.validation import Validator
from wenming.points.v1 import events_pb2
from wenming.points.v1 import points_pb2 as pb

from . import crashpoints
from .directory import Directory
from .earning import Cause, EntrySpec
from .models import Account, LedgerEntry, Posting
from .owners import LEASE_SECONDS, RENEW_SECONDS, Owners
from .rulebook import RuleBook

log = logging.getLogger(__name__)

K, B, E = pb.AccountKind, pb.Book, pb.EntryKind
BOOK_FIELD = {B.BOOK_VERIFIED_MINUTES: "verified_minutes", B.BOOK_MANUAL_MINUTES: "manual_minutes",
              B.BOOK_TRAINING_MINUTES: "training_minutes", B.BOOK_POINTS: "points"}
REVERSIBLE = (E.ENTRY_KIND_EARNED, E.ENTRY_KIND_MANUAL_HOURS, E.ENTRY_KIND_ADJUSTMENT)
# a posting's owner gives up before touching the balance after this long; recovery waits longer
OWNER_DEADLINE_SECONDS = 30.0
# a retry finding its posting in progress waits this long for the owner to finish it or to be
# known dead (its lease run out)
SETTLE_SECONDS = LEASE_SECONDS + RENEW_SECONDS
SETTLING = Retry(max_attempts=None, backoff=Backoff(first_seconds=0.05, max_seconds=0.4),
                 deadline_seconds=SETTLE_SECONDS)
# each round of version-guarded writes to one account has one winner: room for a hundred at once
CONFLICTS = Retry(max_attempts=100, backoff=LOST_RACE)

ENTRIES_POSTED = Counter("points_ledger_entries_total", "Ledger entries in the balances", ["book", "kind"])
STAR_CHANGES = Counter("points_star_changes_total", "Star level changes (星级认定)", ["level"])


def insert_new(collection, documents: list[dict]) -> set[str]:
    """Inserts what is not there yet; returns the ids inserted (duplicates are skipped)."""
    if not documents:
        return set()
    try:
        collection.insert_many(documents, ordered=False)
        return {d["_id"] for d in documents}
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != 11000 for e in errors):
            raise
        duplicate = {documents[e["index"]]["_id"] for e in errors}
        return {d["_id"] for d in documents} - duplicate


def entry_document(spec: EntrySpec, district_id: str, *, source: str = "", reason: str = "", actor_id: str = "",
                   reverses: str = "", request_key: str = "", now: dt.datetime | None = None) -> dict:
    """`request_key`: the caller and idempotency key of a posting whose own key is not the
    caller's (a reversal's is the entry it reverses), so a retry is told apart from a repeat."""
    now = now or clock.now()
    return {**({"request_key": request_key} if request_key else {}),
        "_id": spec.key, "district_id": district_id, "account_id": spec.account_id,
        "account_kind": spec.account_kind, "book": spec.book, "kind": spec.kind, "amount": spec.amount,
        "seq": ulid(), "earning": spec.earning, "cause": spec.cause.as_document(),
        "recorded_by_unit_id": spec.recorded_by_unit_id, "unit_path": list(spec.unit_path), "reason": reason,
        "actor_id": actor_id, "reverses": reverses, "source": source, "occurred_at": spec.cause.occurred_at,
        "recorded_at": now, "expires_at": spec.expires_at,
    }


def _incremented(account: dict, update: dict) -> dict:
    """The account as a version-guarded `update` of it (with_events: $inc, $set, version) left it."""
    after = {**account, "version": account["version"] + 1, "marks": {**account.get("marks", {})}}
    for field, amount in update["$inc"].items():
        after[field] = after.get(field, 0) + amount
    for field, value in update["$set"].items():
        after["marks"][field[len("marks."):]] = value
    return after


def new_account(district_id: str, account_id: str, kind: int) -> dict:
    return {"_id": account_id, "district_id": district_id, "kind": kind, "verified_minutes": 0, "manual_minutes": 0,
            "training_minutes": 0, "points": 0, "marks": {}, "postings": [], "star_level": 0, "star_history": [],
            "created_at": clock.now(), "version": 0, "outbox": [], "outbox_pending": False}


@dataclass(frozen=True)
class Consumed:
    """One consumed record's entries, as the consumer hands them over; `source` names the topic
    partition it came from (an account's mark is kept per source)."""

    index: int
    source: str
    offset: int
    district_id: str
    specs: list[EntrySpec]

    @property
    def origin(self) -> str:
        """What its entries store as `source`: the record that inserted them."""
        return f"{self.source}@{self.offset}"


class Ledger:
    def __init__(self, rules: RuleBook, directory: Directory, events: EventSource, owners: Owners):
        self.rules = rules
        self.directory = directory
        self.events = events
        self.owners = owners
        self.accounts = Account.collection()
        self.entries = LedgerEntry._get_collection()
        self.postings = Posting._get_collection()

    # ---- events ----

    @staticmethod
    def _credited_payload(entry: dict) -> events_pb2.PointsCredited:
        return events_pb2.PointsCredited(
            account_id=entry["account_id"], account_kind=entry["account_kind"], book=entry["book"],
            kind=entry["kind"], amount=entry["amount"], entry_id=entry["_id"], cause_id=entry["cause"]["id"],
            cause_event_id=entry["cause"]["event_id"], recorded_by_unit_id=entry["recorded_by_unit_id"],
            occurred_at=to_timestamp(entry["occurred_at"]))

    def _credited(self, entry: dict, version: int) -> dict:
        """PointsCredited for a posting, queued in the account's outbox with the balance change."""
        return self.events.new(self._credited_payload(entry), district_id=entry["district_id"],
                               aggregate_type="account", aggregate_id=entry["account_id"], version=version,
                               actor_id=entry["actor_id"])

    def _announced(self, entry: dict) -> dict:
        """PointsCredited for an entry from a consumed event: the entry is its aggregate (created
        once, version 1) and the event id derives from its key, so announcing it again after a
        re-delivery repeats the very same event."""
        return derived_event(self.events, entry["_id"], self._credited_payload(entry),
                             district_id=entry["district_id"], aggregate_type="ledger_entry",
                             aggregate_id=entry["_id"], version=1, occurred_at=as_utc(entry["recorded_at"]))

    @staticmethod
    def _balance_update(entries: list[dict]) -> dict:
        inc: dict[str, int] = defaultdict(int)
        for entry in entries:
            inc[BOOK_FIELD[entry["book"]]] += entry["amount"]
        update: dict = {"$inc": dict(inc)}
        expiries = [as_utc(e["expires_at"]) for e in entries if e.get("expires_at") and e["amount"] > 0]
        if expiries:
            update["$min"] = {"next_expiry_at": min(expiries)}
        return update

    @staticmethod
    def _count(entries: list[dict]) -> None:
        for entry in entries:
            ENTRIES_POSTED.labels(B.Name(entry["book"]), E.Name(entry["kind"])).inc()

    # ---- the consumer's path ----

    def apply_consumed(self, items: list[Consumed], producer) -> dict[int, Outcome | Exception]:
        """Stores the entries of a batch of records (a whole poll, any partitions), brings the
        balances of every account they touch up to date, and announces the entries (acked by the
        broker before the consumer commits). Returns each record's outcome.

        A handful of round trips whatever the batch's size: the accounts read at once, the
        entries inserted at once, every account's increment in one bulk write."""
        now = clock.now()
        account_ids = sorted({s.account_id for item in items for s in item.specs})
        known = {d["_id"]: d for d in self.accounts.find({"_id": {"$in": account_ids}}, {"outbox": 0})}
        outcomes: dict[int, Outcome | Exception] = {}
        valid: list[Consumed] = []
        for item in items:
            foreign = next((s.account_id for s in item.specs if s.account_id in known
                            and known[s.account_id]["district_id"] != item.district_id), None)
            if foreign:
                outcomes[item.index] = ValueError(f"account {foreign} belongs to another district")
            else:
                valid.append(item)

        documents: dict[str, dict] = {}
        for item in valid:
            for spec in item.specs:
                documents.setdefault(spec.key, entry_document(spec, item.district_id, source=item.origin, now=now))
        inserted = insert_new(self.entries, list(documents.values()))
        duplicates = [key for key in documents if key not in inserted]
        stored = {d["_id"]: d for d in self.entries.find({"_id": {"$in": duplicates}})} if duplicates else {}
        crashpoints.reached("ledger.entered")

        # an entry belongs in the balances with the record that inserted it: this one now, or
        # this same record in an attempt that crashed before the balances were incremented
        owned: dict[str, list[tuple[str, int, dict]]] = defaultdict(list)
        kinds: dict[str, int] = {}
        for item in valid:
            outcomes[item.index] = Outcome.APPLIED if any(s.key in inserted for s in item.specs) else Outcome.DUPLICATE
            for spec in item.specs:
                entry = documents[spec.key] if spec.key in inserted else stored.get(spec.key)
                if entry is not None and entry["source"] == item.origin:
                    owned[spec.account_id].append((item.source, item.offset, entry))
                    kinds[spec.account_id] = spec.account_kind

        districts = {s.account_id: item.district_id for item in valid for s in item.specs}
        missing = [new_account(districts[a], a, kinds[a]) for a in owned if a not in known]
        if missing:
            insert_new(self.accounts, missing)
            known.update({d["_id"]: d for d in self.accounts.find({"_id": {"$in": [m["_id"] for m in missing]}},
                                                                  {"outbox": 0})})
        self._apply_marked({a: known[a] for a in owned}, owned)
        publish_and_wait(producer, [self._announced(entry) for rows in owned.values() for *_, entry in rows])
        return outcomes

    def _apply_marked(self, accounts: dict[str, dict], owned: dict[str, list[tuple[str, int, dict]]]) -> None:
        """Adds each account's owned entries not yet in its balances (the marks say which) and
        moves the marks past them: one version-guarded update per account, all in one bulk
        write. An account changed meanwhile (an RPC posting) is read again and tried again."""
        for _ in CONFLICTS.attempts():
            if not accounts:
                return
            plans: dict[str, tuple[list, dict]] = {}
            for account_id, account in accounts.items():
                marks = account.get("marks", {})
                rows = owned[account_id]
                pending = [(source, offset, entry) for source, offset, entry in rows
                           if offset > marks.get(source, -1)]
                if not pending:
                    continue
                update = self._balance_update([entry for *_, entry in pending])
                update["$set"] = {f"marks.{source}": max(o for s, o, _ in rows if s == source)
                                  for source in {source for source, _, _ in pending}}
                plans[account_id] = (pending, update)
            if not plans:
                return
            result = self.accounts.bulk_write(
                [UpdateOne({"_id": a, "version": accounts[a]["version"]}, with_events(update, []))
                 for a, (_, update) in plans.items()], ordered=False)
            if result.modified_count == len(plans):
                after = {a: _incremented(accounts[a], update) for a, (_, update) in plans.items()}
            else:  # the marks of the accounts read again say whose update went in
                after = {d["_id"]: d for d in self.accounts.find({"_id": {"$in": list(plans)}}, {"outbox": 0})}
            accounts = {}
            for account_id, (pending, update) in plans.items():
                account = after[account_id]
                if all(account.get("marks", {}).get(field[len("marks."):], -1) >= offset
                       for field, offset in update["$set"].items()):
                    self._count([entry for *_, entry in pending])
                    self._check_stars(account)
                else:
                    accounts[account_id] = account
        # the consumer reads the batch again after a back-off: every effect is keyed
        raise Aborted("the batch's accounts kept changing while their balances were updated")

    # ---- stars ----

    def _check_stars(self, account: dict) -> dict:
        """Grants the star level the counted hours reach, once; levels never drop."""
        if account["kind"] != K.ACCOUNT_KIND_VOLUNTEER:
            return account
        rules = self.rules.for_district(account["district_id"])
        for _ in CONFLICTS.attempts():
            counted = rules.counted_minutes(account["verified_minutes"], account["manual_minutes"],
                                            account["training_minutes"])
            level = rules.star_level(counted)
            old = account.get("star_level", 0)
            if level <= old:
                return account
            now = clock.now()
            grant = {"level": level, "granted_at": now, "counted_minutes": counted,
                     "threshold_minutes": rules.star_threshold_hours[level - 1] * 60}
            event = self.events.new(
                events_pb2.StarLevelChanged(volunteer_id=account["_id"], old_level=old, new_level=level,
                                            counted_minutes=counted, threshold_minutes=grant["threshold_minutes"],
                                            granted_at=to_timestamp(now)),
                district_id=account["district_id"], aggregate_type="account", aggregate_id=account["_id"],
                version=account["version"] + 1)
            after = update_with_events(self.accounts, {"_id": account["_id"], "version": account["version"]},
                                       {"$set": {"star_level": level}, "$push": {"star_history": grant}}, [event])
            if after is not None:
                STAR_CHANGES.labels(str(level)).inc()
                return after
            account = self.accounts.find_one({"_id": account["_id"]}, {"outbox": 0})
        raise Aborted("the account kept changing while its star level was granted; retry")

    # ---- postings from RPCs ----

    def _ensure_account(self, district_id: str, account_id: str, kind: int) -> None:
        insert_new(self.accounts, [new_account(district_id, account_id, kind)])

    def post(self, entry: dict, *, guard: bool) -> tuple[dict, dict]:
        """Applies one entry from an RPC exactly once. `guard`: refuse (FailedPrecondition) rather
        than take the balance below zero. Returns the entry and the account after it."""
        key = entry["_id"]
        started = time.monotonic()
        journal = {"_id": key, "district_id": entry["district_id"], "account_id": entry["account_id"],
                   "state": "PENDING", "entry": entry, "failure": "", "owner": self.owners.id,
                   "created_at": clock.now()}
        for _ in range(3):
            try:
                self.postings.insert_one(journal)
                break
            except DuplicateKeyError:
                outcome = self._replay(key, entry)
                if outcome is not None:
                    return outcome
        else:
            raise Aborted("this change is being retried concurrently; retry shortly")
        crashpoints.reached("posting.journaled")
        self._ensure_account(entry["district_id"], entry["account_id"], entry["account_kind"])
        account = self.accounts.find_one({"_id": entry["account_id"]}, {"outbox": 0})
        if account["district_id"] != entry["district_id"]:
            self.postings.delete_one({"_id": key})
            raise NotFound("account", entry["account_id"])
        if not self._apply_posting(entry, account, guard=guard, started=started):
            self._give_up(key)
            raise Unavailable("the ledger is slow to answer; nothing was changed, retry")
        crashpoints.reached("posting.applied")
        self._materialize(entry)
        self._count([entry])
        after = self._check_stars(self.accounts.find_one({"_id": entry["account_id"]}, {"outbox": 0}))
        return entry, after

    def _apply_posting(self, entry: dict, account: dict, *, guard: bool, started: float) -> bool:
        """Adds a journaled posting to its account's balance (version-guarded, read again after a
        lost race). False when it must be given up untouched: past the owner's deadline, its
        lease in doubt, or out of attempts."""
        key, field = entry["_id"], BOOK_FIELD[entry["book"]]
        for _ in CONFLICTS.attempts():
            if guard and entry["amount"] < 0 and account[field] + entry["amount"] < 0:
                failure = (f"not enough {B.Name(entry['book'])[5:].lower().replace('_', ' ')}: "
                           f"{account[field]} available, {-entry['amount']} needed")
                self.postings.update_one({"_id": key}, {"$set": {"state": "FAILED", "failure": failure}})
                raise FailedPrecondition(failure)
            if time.monotonic() - started > OWNER_DEADLINE_SECONDS or not self.owners.fresh():
                return False  # past this point recovery may take the posting for abandoned
            update = self._balance_update([entry])
            update["$push"] = {"postings": key}
            if update_with_events(self.accounts, {"_id": account["_id"], "version": account["version"]}, update,
                                  [self._credited(entry, account["version"] + 1)]) is not None:
                return True
            account = self.accounts.find_one({"_id": entry["account_id"]}, {"outbox": 0})
        return False

    def _materialize(self, entry: dict) -> None:
        """The steps after the balance changed: store the entry, drop the key, close the journal."""
        insert_new(self.entries, [entry])
        crashpoints.reached("posting.entered")
        self.accounts.update_one({"_id": entry["account_id"]}, {"$pullAll": {"postings": [entry["_id"]]}})
        crashpoints.reached("posting.unlisted")
        # upsert: recovery may have given up on a posting whose owner was only slow
        self.postings.update_one({"_id": entry["_id"]}, {"$set": {"state": "DONE", "entry": entry,
                                                                  "district_id": entry["district_id"],
                                                                  "account_id": entry["account_id"]}}, upsert=True)

    def _give_up(self, key: str) -> None:
        """Drops this attempt's journal before it touched the balance: the key is free at once."""
        try:
            self.postings.delete_one({"_id": key, "state": "PENDING", "owner": self.owners.id})
        except PyMongoError:
            pass  # recovery forgets it once this process's lease or the recovery delay runs out

    def _replay(self, key: str, entry: dict) -> tuple[dict, dict] | None:
        """The outcome of the earlier attempt with this key, once there is one: a posting in
        progress is waited for, or finished here when its owner died. None when that attempt
        was forgotten (it changed nothing): the key is free again."""
        for _ in SETTLING.attempts():
            journal = self.postings.find_one({"_id": key})
            if journal is None:
                return None
            stored = journal["entry"]
            if (stored["account_id"], stored["book"], stored["amount"]) != (entry["account_id"], entry["book"],
                                                                           entry["amount"]):
                raise InvalidArgument.field("idempotency_key", "was already used for a different request")
            if journal["state"] == "FAILED":
                raise FailedPrecondition(journal["failure"])
            if journal["state"] == "DONE":
                return stored, self.accounts.find_one({"_id": stored["account_id"]}, {"outbox": 0})
            if self.owners.dead([journal.get("owner", "")]):
                self._recover(journal)
        raise Aborted("this change is still being applied; retry shortly")

    def _recover(self, journal: dict) -> None:
        """Ends a posting whose owner is gone: rolled forward when the balance already changed,
        forgotten (the key may be used again) when it did not. Safe to run twice at once."""
        entry = journal["entry"]
        account = self.accounts.find_one({"_id": entry["account_id"]}, {"postings": 1}) or {"postings": []}
        if entry["_id"] in account["postings"] or self.entries.find_one({"_id": entry["_id"]}, {"_id": 1}):
            log.warning("finishing interrupted posting %s", entry["_id"])
            self._materialize(entry)
            self._count([entry])
        else:
            log.warning("forgetting posting %s interrupted before it changed a balance", entry["_id"])
            # only if no retry took the key over meanwhile
            self.postings.delete_one({"_id": entry["_id"], "state": "PENDING", "owner": journal.get("owner")})

    def recover_postings(self, older_than_seconds: float) -> int:
        """Ends the postings whose owner died (its lease ran out), and any still in progress
        after `older_than_seconds` (journals of releases before owners)."""
        cutoff = clock.now() - dt.timedelta(seconds=older_than_seconds)
        pending = list(self.postings.find({"state": "PENDING"}))
        dead = self.owners.dead(j.get("owner", "") for j in pending)
        done = 0
        for journal in pending:
            if journal.get("owner") in dead or as_utc(journal["created_at"]) < cutoff:
                self._recover(journal)
                done += 1
        return done

    def journal_state(self, key: str) -> str | None:
        journal = self.postings.find_one({"_id": key}, {"state": 1})
        return journal["state"] if journal else None

    # ---- expiry ----

    def expire_due(self) -> int:
        """Posts EXPIRY entries for points past their validity (earliest-expiring spent first)."""
        now = clock.now()
        expired = 0
        for district_id in self.accounts.distinct("district_id"):
            for account in self.accounts.find({"district_id": district_id, "next_expiry_at": {"$lte": now}},
                                              {"next_expiry_at": 1, "kind": 1, "district_id": 1}):
                expired += self._expire(account, as_utc(account["next_expiry_at"]))
        return expired

    def _expire(self, account: dict, boundary: dt.datetime) -> int:
        lots_due, others, balance, later = 0, 0, 0, None
        for e in self.entries.find({"district_id": account["district_id"], "account_id": account["_id"],
                                    "book": B.BOOK_POINTS}, {"amount": 1, "expires_at": 1}):
            balance += e["amount"]
            expires = as_utc(e["expires_at"]) if e.get("expires_at") else None
            if expires is None:
                others += e["amount"]  # spends, refunds and earlier expiries
            elif expires <= boundary:
                lots_due += e["amount"]
            elif e["amount"] > 0:
                later = min(later, expires) if later else expires
        amount = min(balance, lots_due + others)
        posted = 0
        if amount > 0:
            cause = Cause("points.expiry", account["_id"], "", "积分到期", 0, boundary)
            spec = EntrySpec(f"exp:{account['_id']}:{boundary:%Y%m%d%H}", account["_id"], account["kind"],
                             B.BOOK_POINTS, E.ENTRY_KIND_EXPIRY, -amount, cause, "", (), earning=False)
            try:
                self.post(entry_document(spec, account["district_id"], reason="积分有效期届满"), guard=True)
                posted = 1
            except FailedPrecondition:
                # spent meanwhile: the next pass computes the amount again under the same key
                self.postings.delete_one({"_id": spec.key, "state": "FAILED"})
                return 0
        update = {"$set": {"next_expiry_at": later}} if later else {"$unset": {"next_expiry_at": ""}}
        self.accounts.update_one({"_id": account["_id"], "next_expiry_at": boundary}, update)
        return posted

    # ---- reads ----

    def account_view(self, district_id: str, account_id: str, kind: int) -> dict:
        return self.accounts.find_one({"_id": account_id, "district_id": district_id}, {"outbox": 0, "marks": 0}) \
            or new_account(district_id, account_id, kind)

    def get_account(self, principal: Principal, account_id: str):
        v = Validator()
        account_id = v.ident("account_id", account_id, required=False)
        v.check()
        if not account_id:
            account_id, _ = self.directory.own_account(principal)
        holder = self.directory.readable(principal, account_id)
        return self.account_view(principal.district_id, account_id, holder.kind), holder

    def list_entries(self, principal: Principal, req: pb.ListLedgerEntriesRequest) -> tuple[list[dict], str]:
        v = Validator()
        account_id = v.ident("account_id", req.account_id, required=False)
        v.enum("book", req.book, pb.Book, required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        if not account_id:
            account_id, _ = self.directory.own_account(principal)
        self.directory.readable(principal, account_id)
        query: dict = {"district_id": principal.district_id, "account_id": account_id}
        if req.book:
            query["book"] = req.book
        if after:
            query["seq"] = {"$lt": after}
        found = list(self.entries.find(query).sort("seq", -1).limit(size + 1))
        token = encode_page_token(found[size - 1]["seq"]) if len(found) > size else ""
        return found[:size], token

    def audit(self, principal: Principal, account_id: str) -> tuple[list[pb.BookAudit], int]:
        v = Validator()
        account_id = v.ident("account_id", account_id)
        v.check()
        holder = self.directory.managed(principal, account_id)
        account = self.account_view(principal.district_id, account_id, holder.kind)
        sums = {row["_id"]: row["total"] for row in self.entries.aggregate([
            {"$match": {"district_id": principal.district_id, "account_id": account_id}},
            {"$group": {"_id": "$book", "total": {"$sum": "$amount"}}}])}
        count = self.entries.count_documents({"district_id": principal.district_id, "account_id": account_id})
        in_flight: dict[int, int] = defaultdict(int)
        for journal in self.postings.find({"_id": {"$in": list(account.get("postings", []))}}):
            in_flight[journal["entry"]["book"]] += journal["entry"]["amount"]
        return [pb.BookAudit(book=book, stored=account[field], from_entries=sums.get(book, 0),
                             in_flight=in_flight[book]) for book, field in BOOK_FIELD.items()], count

    # ---- admin postings ----

    @staticmethod
    def _admin(principal: Principal) -> None:
        if principal.role != Role.ROLE_UNIT_ADMIN:
            raise PermissionDenied("only a unit admin may do this")

    def add_manual_hours(self, principal: Principal, req: pb.AddManualHoursRequest) -> tuple[dict, dict]:
        v = Validator()
        volunteer_id = v.ident("volunteer_id", req.volunteer_id)
        v.int_range("minutes", req.minutes, 1, 24 * 60)
        reason = v.text("reason", req.reason, max_len=200)
        content = v.text("content", req.content, max_len=100)
        key = v.idempotency_key(req.idempotency_key)
        v.check()
        self._admin(principal)
        holder = self.directory.managed(principal, volunteer_id)
        if holder.kind != K.ACCOUNT_KIND_VOLUNTEER:
            raise InvalidArgument.field("volunteer_id", "is not a volunteer")
        now = clock.now()
        cause = Cause("AddManualHours", volunteer_id, "", content, 0, now)
        spec = EntrySpec(f"man:{principal.subject}:{key}", volunteer_id, holder.kind, B.BOOK_MANUAL_MINUTES,
                         E.ENTRY_KIND_MANUAL_HOURS, req.minutes, cause, principal.unit_id, principal.unit_path,
                         earning=False)
        return self.post(entry_document(spec, principal.district_id, reason=reason, actor_id=principal.subject,
                                        now=now), guard=False)

    def adjust_points(self, principal: Principal, req: pb.AdjustPointsRequest) -> tuple[dict, dict]:
        v = Validator()
        account_id = v.ident("account_id", req.account_id)
        if req.amount == 0 or abs(req.amount) > 100_000:
            v.fail("amount", "must be non-zero and at most 100000 either way")
        reason = v.text("reason", req.reason, max_len=200)
        key = v.idempotency_key(req.idempotency_key)
        v.check()
        self._admin(principal)
        holder = self.directory.managed(principal, account_id)
        now = clock.now()
        rules = self.rules.for_district(principal.district_id)
        cause = Cause("AdjustPoints", account_id, "", reason, 0, now)
        spec = EntrySpec(f"adj:{principal.subject}:{key}", account_id, holder.kind, B.BOOK_POINTS,
                         E.ENTRY_KIND_ADJUSTMENT, req.amount, cause, principal.unit_id, principal.unit_path,
                         expires_at=rules.points_expiry(now) if req.amount > 0 else None, earning=False)
        return self.post(entry_document(spec, principal.district_id, reason=reason, actor_id=principal.subject,
                                        now=now), guard=True)

    def reverse(self, principal: Principal, req: pb.ReverseEntryRequest) -> tuple[dict, dict]:
        v = Validator()
        entry_id = v.text("entry_id", req.entry_id, max_len=200)
        reason = v.text("reason", req.reason, max_len=200)
        retry_key = v.idempotency_key(req.idempotency_key) if req.idempotency_key else ""
        v.check()
        self._admin(principal)
        original = self.entries.find_one({"_id": entry_id, "district_id": principal.district_id})
        if original is None:
            raise NotFound("ledger entry", entry_id)
        self.directory.managed(principal, original["account_id"])
        if original["kind"] not in REVERSIBLE:
            raise FailedPrecondition(f"a {E.Name(original['kind'])} entry cannot be reversed"
                                     + (" (refund the redemption instead)" if original["kind"] == E.ENTRY_KIND_REDEMPTION
                                        else ""))
        key = f"rev:{entry_id}"
        request_key = f"{principal.subject}:{retry_key}" if retry_key else ""
        if self.journal_state(key) == "DONE" or self.entries.find_one({"_id": key}, {"_id": 1}):
            made = self.entries.find_one({"_id": key, "request_key": request_key}) if request_key else None
            if made is None:
                raise FailedPrecondition("this entry has already been reversed")
            return made, self.accounts.find_one({"_id": made["account_id"]}, {"outbox": 0})
        now = clock.now()
        # dated like the original, so period totals (leaderboards) net out where it counted
        cause = Cause("ReverseEntry", entry_id, "", original["cause"].get("title", ""),
                      original["cause"].get("category", 0), as_utc(original["occurred_at"]))
        spec = EntrySpec(key, original["account_id"], original["account_kind"], original["book"],
                         E.ENTRY_KIND_REVERSAL, -original["amount"], cause, original["recorded_by_unit_id"],
                         tuple(original["unit_path"]), original.get("expires_at"), original.get("earning", False))
        return self.post(entry_document(spec, principal.district_id, reason=reason, actor_id=principal.subject,
                                        reverses=entry_id, request_key=request_key, now=now), guard=True)

