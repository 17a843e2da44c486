"""Stored messages → API messages and the event that announces one."""

from __future__ import annotations

import dataclasses

from services.common.events import to_timestamp
from wenming.notification.v1 import events_pb2
from wenming.notification.v1 import notification_pb2 as pb

from .messages import Message, Recipient


def message_msg(doc: dict) -> pb.InboxMessage:
    """An inbox message from its stored document."""
    return pb.InboxMessage(
        message_id=doc["_id"], kind=doc["kind"], title=doc["title"], body=doc["body"], link=doc["link"],
        subject_type=doc["subject_type"], subject_id=doc["subject_id"], created_at=to_timestamp(doc["created_at"]),
        read=doc.get("read", False))


def created_msg(recipient: Recipient, message: Message) -> events_pb2.InboxMessageCreated:
    """InboxMessageCreated of a message just stored (unread)."""
    doc = {"_id": message.message_id, **dataclasses.asdict(message)}
    return events_pb2.InboxMessageCreated(recipient_id=recipient.principal_id, recipient_role=recipient.role,
                                          message=message_msg(doc))
