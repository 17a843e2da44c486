"""The inbox API: newest first in keyset pages, the unread count, marking read only one's own
messages, refusals; and a re-delivered event stores, announces and forwards nothing twice."""

from __future__ import annotations

import uuid

import grpc
import pytest

from tests.support.waiting import wait_until
from tests.points.support import token_for, volunteer_principal
from tests.support.grpc_helpers import expect_error
from wenming.notification.v1 import events_pb2 as nev
from wenming.notification.v1 import notification_pb2 as pb
from wenming.ordering.v1 import events_pb2 as ev

from .support import K


@pytest.fixture(scope="module")
def district_id() -> str:
    """Messages here come from hand-published events about people registration never saw."""
    return f"d{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def people(stack, world, district_id):
    """Two volunteers (id, token)."""
    ids = [f"vol_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    return [(vid, token_for(stack, volunteer_principal(district_id, vid, world.courtyards[0]))) for vid in ids]


def dispatch(feed, world, district_id: str, volunteer_ids: list[str], order_id: str = "") -> tuple[str, dict]:
    """OrderDispatched of an order (a new one unless named) to the volunteers, as ordering publishes it."""
    order_id = order_id or f"ord_{uuid.uuid4().hex[:12]}"
    payload = ev.OrderDispatched(order=feed.order(order_id, courtyard=world.courtyards[0]), volunteer_ids=volunteer_ids)
    entry = feed.order_event(payload, district_id, version=3)
    feed.send(entry)
    return order_id, entry


def test_pages_newest_first_with_the_unread_count(inboxes, feed, world, district_id, people):
    (me, token), (other, other_token) = people
    orders = [dispatch(feed, world, district_id, [me])[0] for _ in range(5)]
    dispatch(feed, world, district_id, [other])
    wait_until(lambda: len(inboxes.list(token).messages) == 5, what="five messages")

    newest = inboxes.list(token).messages
    # newest first (ids are time-ordered); the orders' events were consumed from several partitions
    assert [m.message_id for m in newest] == sorted((m.message_id for m in newest), reverse=True)
    assert {m.subject_id for m in newest} == set(orders)
    seen, page_token, pages = [], "", 0
    while True:
        page = inboxes.list(token, size=2, page_token=page_token)
        assert page.unread == 5
        seen += [m.message_id for m in page.messages]
        pages += 1
        page_token = page.page.next_page_token
        if not page_token:
            break
    assert pages == 3 and seen == [m.message_id for m in newest]

    read = inboxes.stub.MarkInboxRead(pb.MarkInboxReadRequest(message_ids=[newest[0].message_id, newest[1].message_id]),
                                      metadata=token, timeout=10)
    assert read.unread == 3
    unread = inboxes.list(token, unread_only=True)
    assert [m.message_id for m in unread.messages] == [m.message_id for m in newest[2:]] and unread.unread == 3
    assert [m.read for m in inboxes.list(token).messages] == [True, True, False, False, False]
    # marking again changes nothing; then everything
    assert inboxes.stub.MarkInboxRead(pb.MarkInboxReadRequest(message_ids=[newest[0].message_id]), metadata=token,
                                      timeout=10).unread == 3
    assert inboxes.stub.MarkInboxRead(pb.MarkInboxReadRequest(all=True), metadata=token, timeout=10).unread == 0
    # the other volunteer's message is untouched by all of that
    assert inboxes.list(other_token).unread == 1


def test_nobody_reads_or_marks_another_persons_messages(stack, inboxes, feed, world, district_id, people):
    (_, token), (other, other_token) = people
    order_id, _ = dispatch(feed, world, district_id, [other])
    (theirs,) = inboxes.wait_about(other_token, order_id, 1)
    with expect_error(grpc.StatusCode.NOT_FOUND, contains=theirs.message_id):
        inboxes.stub.MarkInboxRead(pb.MarkInboxReadRequest(message_ids=[theirs.message_id]), metadata=token, timeout=10)
    assert order_id not in {m.subject_id for m in inboxes.list(token).messages}
    # the same person id with a token of another district finds nothing either
    elsewhere = token_for(stack, volunteer_principal(f"d{uuid.uuid4().hex[:10]}", other, world.courtyards[0]))
    assert list(inboxes.list(elsewhere).messages) == []
    with expect_error(grpc.StatusCode.NOT_FOUND):
        inboxes.stub.MarkInboxRead(pb.MarkInboxReadRequest(message_ids=[theirs.message_id]), metadata=elsewhere,
                                   timeout=10)
    assert [m.read for m in inboxes.about(other_token, order_id)] == [False]


def test_bad_requests_are_refused(inboxes, people):
    _, token = people[0]
    with expect_error(grpc.StatusCode.UNAUTHENTICATED):
        inboxes.stub.ListInbox(pb.ListInboxRequest(), timeout=10)
    with expect_error(grpc.StatusCode.UNAUTHENTICATED):
        inboxes.stub.ListInbox(pb.ListInboxRequest(), metadata=[("authorization", "Bearer not-a-token")], timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="page.page_size"):
        inboxes.list(token, size=101)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="page.page_token"):
        inboxes.list(token, page_token="!!not a token!!")
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="message_ids"):
        inboxes.stub.MarkInboxRead(pb.MarkInboxReadRequest(), metadata=token, timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="message_ids"):
        inboxes.stub.MarkInboxRead(pb.MarkInboxReadRequest(message_ids=["msg_1"], all=True), metadata=token, timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="message_ids[1]"):
        inboxes.stub.MarkInboxRead(pb.MarkInboxReadRequest(message_ids=["msg_1", "msg_1"]), metadata=token, timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="message_ids"):
        inboxes.stub.MarkInboxRead(pb.MarkInboxReadRequest(message_ids=[f"msg_{i}" for i in range(101)]),
                                   metadata=token, timeout=10)


def test_a_redelivered_event_stores_announces_and_forwards_nothing_twice(inboxes, feed, world, district_id, people,
                                                                        notification_events, webhook):
    (me, token), (other, other_token) = people
    order_id, entry = dispatch(feed, world, district_id, [me])
    inboxes.wait_about(token, order_id, 1)
    feed.send(entry, entry)  # the same event again, twice, as after a consumer's crash before its commit
    # a later event of the same order is consumed after the repeats (one order, one partition)
    dispatch(feed, world, district_id, [other], order_id=order_id)
    inboxes.wait_about(other_token, order_id, 1)

    assert [m.kind for m in inboxes.about(token, order_id)] == [K.MESSAGE_KIND_TASK_DISPATCHED]
    created = [(p.recipient_id, p.message.kind) for _, p, _ in notification_events.events(district_id, at_least=2,
                                                                                           settle=1.0)
               if isinstance(p, nev.InboxMessageCreated) and p.message.subject_id == order_id]
    assert sorted(created) == sorted([(me, K.MESSAGE_KIND_TASK_DISPATCHED), (other, K.MESSAGE_KIND_TASK_DISPATCHED)])

    def forwarded(person: str) -> list:
        return [r for r in webhook.for_recipient(person) if r.body["message"]["subjectId"] == order_id]

    wait_until(lambda: forwarded(other), what="the webhook delivery")  # one queue: the earlier one went first
    assert len(forwarded(me)) == 1
