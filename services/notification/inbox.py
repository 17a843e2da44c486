"""The in-app inbox (站内消息): the channel every message is stored in first, and each person's
view of their own messages.

Storing a message and announcing it (InboxMessageCreated, read by every replica to wake its
watchers) is one document write. A message is stored once per recipient and dedup key (the source
event's id): a re-delivered event stores nothing and announces nothing.
"""

from __future__ import annotations

from pymongo import DESCENDING
from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal
from services.common.clock import clock
from services.common.errors import NotFound
from services.common.events import EventSource
from services.common.ids import decode_page_token, encode_page_token
from services.common.validation import Validator
from wenming.notification.v1 import notification_pb2 as pb

from . import metrics
from .messages import Message, Recipient
from .models import StoredMessage
from .translate import created_msg

MAX_IDS = 100


class Inbox:
    name = "inbox"

    def __init__(self, events: EventSource):
        self.events = events
        self.collection = StoredMessage.collection()

    # ---- the channel ----

    def deliver(self, recipient: Recipient, message: Message) -> bool:
        """Stores the message with its announcement; False when it was stored before."""
        doc = StoredMessage(
            id=message.message_id, district_id=recipient.district_id, recipient_id=recipient.principal_id,
            recipient_role=recipient.role, kind=message.kind, title=message.title, body=message.body,
            link=message.link, subject_type=message.subject_type, subject_id=message.subject_id,
            dedup_key=message.dedup_key, source_event_id=message.source_event_id, created_at=message.created_at)
        event = self.events.new(created_msg(recipient, message), district_id=recipient.district_id,
                                aggregate_type="inbox_message", aggregate_id=message.message_id, version=1,
                                occurred_at=message.created_at)
        try:
            doc.insert([event])
        except DuplicateKeyError:
            return False
        metrics.MESSAGES.labels(recipient.district_id, metrics.kind_name(message.kind)).inc()
        return True

    def dispatched_to(self, district_id: str, order_id: str) -> list[str]:
        """Volunteers told of a task about the order."""
        return [d["recipient_id"] for d in self.collection.find(
            {"district_id": district_id, "subject_id": order_id, "kind": pb.MESSAGE_KIND_TASK_DISPATCHED},
            {"recipient_id": 1})]

    # ---- the caller's own messages ----

    @staticmethod
    def _own(principal: Principal) -> dict:
        return {"district_id": principal.district_id, "recipient_id": principal.subject}

    def unread(self, principal: Principal) -> int:
        return self.collection.count_documents({**self._own(principal), "read": False})

    def page(self, principal: Principal, req: pb.ListInboxRequest) -> tuple[list[dict], int, str]:
        """A page of the caller's messages, newest first; the unread count; the next page's token."""
        v = Validator()
        size = v.page_size("page.page_size", req.page.page_size)
        v.check()
        after = decode_page_token(req.page.page_token)
        query = self._own(principal)
        if req.unread_only:
            query["read"] = False
        if after:
            query["_id"] = {"$lt": after}
        docs = list(self.collection.find(query, {"outbox": 0}).sort("_id", DESCENDING).limit(size + 1))
        token = encode_page_token(docs[size - 1]["_id"]) if len(docs) > size else ""
        return docs[:size], self.unread(principal), token

    def mark_read(self, principal: Principal, req: pb.MarkInboxReadRequest) -> int:
        """Marks the caller's named messages (or all of them) read; returns what stays unread. A
        message of someone else is as absent as one that never existed."""
        v = Validator()
        ids = v.ids("message_ids", list(req.message_ids), max_count=MAX_IDS)
        if req.all and ids:
            v.fail("message_ids", "name messages or set all, not both")
        elif not req.all and not ids:
            v.fail("message_ids", "name at least one message, or set all")
        v.check()
        query = {**self._own(principal), "read": False}
        if ids:
            found = {d["_id"] for d in self.collection.find({**self._own(principal), "_id": {"$in": ids}}, {"_id": 1})}
            missing = [i for i in ids if i not in found]
            if missing:
                raise NotFound("message", missing[0])
            query["_id"] = {"$in": ids}
        self.collection.update_many(query, {"$set": {"read": True, "read_at": clock.now()}})
        return self.unread(principal)
