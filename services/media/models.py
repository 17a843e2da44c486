"""What media stores. Aggregates carry their events in the in-document outbox; blobs (content
and its chunks) are storage internals without events, see blobs.py and storage.py."""

from __future__ import annotations

from mongoengine import BooleanField, DateTimeField, DictField, IntField, ListField, StringField

from services.common.documents import Aggregate


class UnitOwned(Aggregate):
    """An aggregate that belongs to a unit; the copied path decides who manages it."""

    meta = {"abstract": True}
    unit_id = StringField(required=True)
    unit_level = IntField(default=0)
    unit_name = StringField(default="")
    unit_path = ListField(StringField())


class Asset(UnitOwned):
    meta = {
        "collection": "assets",
        "indexes": [
            {"fields": ["district_id", "unit_path"]},
            {"fields": ["district_id", "uploaded_by"]},
            {"fields": ["district_id", "order_ids"]},
            {"fields": ["district_id", "activity_ids"]},
            {"fields": ["district_id", "blob_id"]},
        ],
    }
    kind = IntField(required=True)
    content_type = StringField(required=True)
    size = IntField(required=True)
    sha256 = StringField(required=True)
    blob_id = StringField(required=True)
    thumb_blob_id = StringField(default="")
    thumb_size = IntField(default=0)
    width = IntField(default=0)
    height = IntField(default=0)
    file_name = StringField(required=True)
    uploaded_by = StringField(required=True)
    order_ids = ListField(StringField())
    activity_ids = ListField(StringField())
    status = IntField(required=True)
    audit = ListField(DictField())  # {at, actor_id, action, note}, append-only
    created_at = DateTimeField(required=True)
    deleted_at = DateTimeField()
    delete_reason = StringField(default="")


class Article(UnitOwned):
    meta = {
        "collection": "articles",
        "indexes": [
            {"fields": ["district_id", "status", "feed_key"]},
            {"fields": ["district_id", "unit_path"]},
            {"fields": ["district_id", "author_id"]},
            {"fields": ["district_id", "all_asset_ids"]},
            {"fields": ["district_id", "honor_volunteer_ids"]},
        ],
    }
    kind = IntField(required=True)
    title = StringField(required=True)
    summary = StringField(default="")
    body = StringField(required=True)
    cover_asset_id = StringField(default="")
    asset_ids = ListField(StringField())
    all_asset_ids = ListField(StringField())  # cover + attachments: "is this asset published?"
    linked_order_id = StringField(default="")
    linked_activity_id = StringField(default="")
    status = IntField(required=True)
    author_id = StringField(required=True)
    author_name = StringField(default="")
    flagged_words = ListField(StringField())
    reject_reason = StringField(default="")
    withdraw_reason = StringField(default="")
    reviewed_by = StringField(default="")
    history = ListField(DictField())  # {at, actor_id, status, note}
    feed_key = StringField(default="")  # "<published ms>:<id>" once published: the feed's order
    created_at = DateTimeField(required=True)
    updated_at = DateTimeField(required=True)
    submitted_at = DateTimeField()
    published_at = DateTimeField()
    withdrawn_at = DateTimeField()
    # 善行义举榜 (kind HONOR_ROLL) only: honor_roll_rules.py
    period = StringField(default="")
    honor_entries = ListField(DictField())  # {volunteer_id, shown_name (masked), deed, commendation_*}
    honor_volunteer_ids = ListField(StringField())  # "which published rolls name this volunteer?"
    request_digest = StringField(default="")  # the create request a retry with its key must repeat


class LiveCourse(UnitOwned):
    meta = {
        "collection": "live_courses",
        "indexes": [
            {"fields": ["district_id", "unit_path"]},
            {"fields": ["district_id", "replay_asset_id"]},
            {"fields": ["district_id", "schedule_key"]},
        ],
    }
    title = StringField(required=True)
    description = StringField(default="")
    lecturer = StringField(default="")
    starts_at = DateTimeField(required=True)
    ends_at = DateTimeField(required=True)
    stream_url = StringField(required=True)
    capacity = IntField(default=0)  # 0: unlimited; never changes after scheduling
    signup_count = IntField(default=0)
    signed_up = ListField(StringField())  # principal ids; guarded by conditional updates
    cancelled = BooleanField(default=False)
    cancel_reason = StringField(default="")
    replay_asset_id = StringField(default="")
    schedule_key = StringField(required=True)  # "<starts ms>:<id>": lists in start order, keyset paged
    created_by = StringField(required=True)
    created_at = DateTimeField(required=True)


class ScreeningPolicy(Aggregate):
    """A district's sensitive-word list; `_id` is the district id."""

    meta = {"collection": "screening_policies"}
    mode = IntField(required=True)
    words = ListField(StringField())
    updated_by = StringField(default="")
    updated_at = DateTimeField(required=True)


AGGREGATES = (Asset, Article, LiveCourse, ScreeningPolicy)
