"""What notification stores: one document per inbox message (with the outbox that announces it)."""

from __future__ import annotations

from mongoengine import BooleanField, DateTimeField, IntField, StringField

from services.common.documents import Aggregate


class StoredMessage(Aggregate):
    meta = {
        "collection": "inbox_messages",
        "indexes": [
            # a recipient's inbox newest first, and its unread part (the count reads this one)
            {"fields": ["district_id", "recipient_id", "-id"]},
            {"fields": ["district_id", "recipient_id", "read", "-id"]},
            # once per source event (or order step) and recipient: a re-delivered event adds nothing
            {"fields": ["district_id", "recipient_id", "dedup_key"], "unique": True},
            # who was told of a task about an order (its cancellation reaches them)
            {"fields": ["district_id", "subject_id", "kind"]},
        ],
    }
    recipient_id = StringField(required=True)
    recipient_role = IntField(required=True)
    kind = IntField(required=True)
    title = StringField(required=True, max_length=40)
    body = StringField(required=True, max_length=300)
    link = StringField(required=True)
    subject_type = StringField(required=True)
    subject_id = StringField(required=True)
    dedup_key = StringField(required=True)
    source_event_id = StringField(required=True)
    created_at = DateTimeField(required=True)
    read = BooleanField(default=False)
    read_at = DateTimeField()


AGGREGATES = (StoredMessage,)
