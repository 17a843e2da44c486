"""What points stores. Hot paths write the raw collections (`Model.collection()`); the
documents below declare the fields and the indexes (leading with district_id; the recovery
jobs' (state, created_at) indexes are the exception: they look across districts)."""

from __future__ import annotations

from mongoengine import (
    BooleanField, DateTimeField, DictField, Document, IntField, ListField, StringField,
)

from services.common.documents import Aggregate


class Account(Aggregate):
    """One person's balances (volunteer or resident); `_id` is the person's id.

    `marks` records, per consumed topic partition, the last offset whose entries are in the
    balances; `postings` lists RPC postings applied to the balances whose entry is still being
    written (see ledger.py)."""

    meta = {"collection": "accounts", "strict": False,
            "indexes": [{"fields": ["district_id", "next_expiry_at"]}, {"fields": ["district_id", "kind"]}]}
    kind = IntField(required=True)
    verified_minutes = IntField(default=0)
    manual_minutes = IntField(default=0)
    training_minutes = IntField(default=0)
    points = IntField(default=0)
    marks = DictField()
    postings = ListField(StringField())
    star_level = IntField(default=0)
    star_history = ListField(DictField())
    next_expiry_at = DateTimeField()
    created_at = DateTimeField()


class LedgerEntry(Document):
    """Append-only. `_id` is the entry's unique key, derived from its cause."""

    meta = {"collection": "ledger_entries", "strict": False, "indexes": [
        {"fields": ["district_id", "account_id", "book", "seq"]},
        {"fields": ["district_id", "book", "unit_path", "occurred_at"]},
        {"fields": ["district_id", "account_id", "recorded_by_unit_id"]},
    ]}
    id = StringField(primary_key=True)
    district_id = StringField(required=True)
    account_id = StringField(required=True)
    account_kind = IntField(required=True)
    book = IntField(required=True)
    kind = IntField(required=True)
    amount = IntField(required=True)
    seq = StringField(required=True)       # time-ordered, for listing newest first
    earning = BooleanField(default=False)  # counts for leaderboards (credits by rule and their reversals)
    cause = DictField()
    recorded_by_unit_id = StringField(default="")
    unit_path = ListField(StringField())
    reason = StringField(default="")
    actor_id = StringField(default="")
    reverses = StringField(default="")
    source = StringField(default="")       # "<service>-<partition>@<offset>" of the consumed record
    occurred_at = DateTimeField()
    recorded_at = DateTimeField()
    expires_at = DateTimeField()


class Posting(Document):
    """The journal of RPC postings: the idempotency gate and what recovery finishes."""

    meta = {"collection": "ledger_postings", "strict": False,
            "indexes": [{"fields": ["state", "created_at"]}, {"fields": ["district_id", "account_id"]}]}
    id = StringField(primary_key=True)
    district_id = StringField(required=True)
    account_id = StringField(required=True)
    state = StringField(required=True)  # PENDING, DONE, FAILED
    entry = DictField()
    failure = StringField(default="")
    created_at = DateTimeField()


class RulesDocument(Document):
    meta = {"collection": "point_rules", "strict": False}
    id = StringField(primary_key=True)  # the district id
    version = IntField(default=0)


class StoreItem(Document):
    meta = {"collection": "store_items", "strict": False,
            "indexes": [{"fields": ["district_id", "unit_id"]}, {"fields": ["district_id", "unit_path"]},
                        {"fields": ["restock_keys"]}]}
    id = StringField(primary_key=True)
    district_id = StringField(required=True)
    unit_id = StringField(required=True)
    unit_path = ListField(StringField())
    unit_name = StringField()
    unit_level = IntField()
    name = StringField(required=True)
    description = StringField(default="")
    price_points = IntField(required=True)
    stock = IntField(required=True)
    active = BooleanField(default=True)
    holds = ListField(StringField())  # redemptions whose stock step is not final yet
    version = IntField(default=1)
    created_at = DateTimeField()
    merchant_id = StringField(default="")  # the 爱心商家 offering it (its name kept beside it)
    merchant_name = StringField(default="")
    min_star_level = IntField(default=0)   # only volunteers of this many stars or more redeem it
    donated_stock = IntField(default=0)    # pieces donated (捐赠) so far; the last donation in `last_donation`
    last_donation = DictField()
    outbox = ListField(DictField())        # StockDonated, written with the stock it adds
    restock_keys = ListField(StringField())  # the last keyed restocks applied (store.RESTOCK_KEYS_KEPT)
    restocks = ListField(DictField())        # and what each asked, in the same order


class Redemption(Aggregate):
    meta = {"collection": "redemptions", "strict": False, "indexes": [
        {"fields": ["district_id", "account_id", "idempotency_key"], "unique": True},
        {"fields": ["district_id", "code"], "unique": True},
        {"fields": ["district_id", "unit_path", "created_at"]},
        {"fields": ["status", "created_at"]},
    ]}
    account_id = StringField(required=True)
    idempotency_key = StringField(required=True)
    code = StringField(required=True)
    status = IntField(required=True)
    unit_path = ListField(StringField())
    created_at = DateTimeField()


class Certificate(Aggregate):
    meta = {"collection": "certificates", "strict": False, "indexes": [
        {"fields": ["number"], "unique": True},
        {"fields": ["district_id", "issuer_unit_id", "idempotency_key"], "unique": True},
        {"fields": ["district_id", "volunteer_id"]},
    ]}
    number = StringField(required=True)
    issuer_unit_id = StringField(required=True)
    idempotency_key = StringField(required=True)
    volunteer_id = StringField(required=True)


class Counter(Document):
    """Per-district sequences (certificate numbers), advanced with $inc."""

    meta = {"collection": "counters", "strict": False}
    id = StringField(primary_key=True)
    seq = IntField(default=0)


# ---- facts for scorecards, from ordering's events ----

class OrderFact(Document):
    meta = {"collection": "order_facts", "strict": False,
            "indexes": [{"fields": ["district_id", "origin_path", "placed_at"]}]}
    id = StringField(primary_key=True)
    district_id = StringField(required=True)
    origin_path = ListField(StringField())
    placed_at = DateTimeField()
    version = IntField(default=0)


class AckFact(Document):
    meta = {"collection": "ack_facts", "strict": False,
            "indexes": [{"fields": ["district_id", "unit_path", "at"]}]}
    id = StringField(primary_key=True)
    district_id = StringField(required=True)
    unit_path = ListField(StringField())
    at = DateTimeField()


class ActivityFact(Document):
    meta = {"collection": "activity_facts", "strict": False,
            "indexes": [{"fields": ["district_id", "unit_path", "starts_at"]}]}
    id = StringField(primary_key=True)
    district_id = StringField(required=True)
    unit_path = ListField(StringField())
    starts_at = DateTimeField()
    version = IntField(default=0)


# ---- 三级创建: facts from registration's venue and ordering's project events, and what admins record ----

class UnitFact(Document):
    """Another service's record as its latest event left it (`_id` its id), placed in the unit tree."""

    meta = {"abstract": True, "strict": False, "indexes": [{"fields": ["district_id", "unit_path"]}]}
    id = StringField(primary_key=True)
    district_id = StringField(required=True)
    unit_path = ListField(StringField())
    version = IntField(default=0)


class VenueFact(UnitFact):
    """A venue (阵地)."""

    meta = {"collection": "venue_facts"}
    name = StringField()
    active = BooleanField()


class RoomFact(UnitFact):
    """A function room (功能室); `unit_path` is its venue's unit."""

    meta = {"collection": "room_facts"}
    venue_id = StringField()
    active = BooleanField()


class ProjectFact(UnitFact):
    """A volunteer service project."""

    meta = {"collection": "project_facts"}
    name = StringField()
    status = IntField()


class TaxonomyFact(Document):
    """A district's mandatory items (必办项目) as its latest DistrictTaxonomySet left them (`_id` the
    district): [{code, name, level, min_per_month}], one entry per item and level."""

    meta = {"collection": "taxonomy_facts", "strict": False}
    id = StringField(primary_key=True)
    mandatory = ListField(DictField())
    version = IntField(default=0)


class GradeEvidence(Aggregate):
    """Evidence an admin recorded for a unit (有机制: a rule document), with who and when."""

    meta = {"collection": "grade_evidence", "strict": False,
            "indexes": [{"fields": ["district_id", "unit_path", "criterion"]}]}
    unit_path = ListField(StringField())
    criterion = IntField(required=True)
    recorded_at = DateTimeField()


class GradeAssessment(Aggregate):
    """A grade a reviewer recorded for a unit and period (评定): the unit's grade history."""

    meta = {"collection": "grade_assessments", "strict": False,
            "indexes": [{"fields": ["district_id", "unit_id", "assessed_at"]}]}
    unit_id = StringField(required=True)
    assessed_at = DateTimeField()


class Commendation(Aggregate):
    """表彰/嘉许: a volunteer's annual commendation, recorded by an admin; revoked, never deleted.

    `volunteer_key` (listing.key(district, "commendations", volunteer)) finds a volunteer's
    commendations and `request_key` (listing.key(district, recorder, idempotency key)) a retry,
    each by one indexed top-level equality, as lists here must (docs/architecture.md)."""

    meta = {"collection": "commendations", "strict": False, "indexes": [
        {"fields": ["request_key"], "unique": True},
        {"fields": ["volunteer_key"]},
    ]}
    volunteer_key = StringField(required=True)
    request_key = StringField(required=True)
    volunteer_id = StringField(required=True)
    unit_id = StringField(required=True)
    unit_path = ListField(StringField())
    year = IntField(required=True)
    level = IntField(required=True)
    title = StringField(required=True)
    issuer = StringField(required=True)
    awarded_on = StringField(required=True)  # YYYY-MM-DD
    recorded_by = StringField(required=True)
    recorded_at = DateTimeField()
    revoked = BooleanField(default=False)
    revoke_reason = StringField(default="")
    revoked_by = StringField(default="")
    revoked_at = DateTimeField()


class Merchant(Aggregate):
    """爱心商家: a partner merchant registered by a unit's admin. The contact phone is kept as
    ciphertext (`contact_phone_enc`, PiiVault) beside its mask; `request_key`
    (listing.key(district, registrar, idempotency key)) finds a retry."""

    meta = {"collection": "merchants", "strict": False, "indexes": [
        {"fields": ["request_key"], "unique": True},
        {"fields": ["district_id", "unit_path"]},
    ]}
    request_key = StringField(required=True)
    unit_id = StringField(required=True)
    unit_path = ListField(StringField())
    name = StringField(required=True)
    status = IntField(required=True)


class PerkRulesDocument(Aggregate):
    """The district's 礼遇 rules (`_id` = the district), set by its center admins."""

    meta = {"collection": "perk_rules", "strict": False}
    rules = ListField(DictField())


ALL_MODELS = (Account, LedgerEntry, Posting, RulesDocument, StoreItem, Redemption, Certificate, Counter,
              OrderFact, AckFact, ActivityFact, VenueFact, RoomFact, ProjectFact, GradeEvidence, GradeAssessment,
              Commendation, Merchant, PerkRulesDocument)
