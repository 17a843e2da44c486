"""WatchInbox: the unread count at once, then messages and heartbeats; messages stored by another
replica; the per-process cap; the end of a stream with its token; shutdown with streams open."""

from __future__ import annotations

import queue
import threading
import time
import urllib.request
import uuid

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.common.auth import Principal
from tests.support.waiting import wait_until
from tests.points.support import token_for, volunteer_principal
from tests.support.grpc_helpers import bearer, expect_error
from wenming.common.v1 import common_pb2 as c
from wenming.notification.v1 import notification_pb2 as pb
from wenming.ordering.v1 import events_pb2 as ev

from .support import Inboxes

ENDED = object()


class Reader:
    """Reads a stream on a thread of its own, so a test can wait for the next update with a timeout."""

    opened: list[Reader] = []  # cancelled after each test, however it ended

    def __init__(self, call):
        self.call = call
        Reader.opened.append(self)
        self._updates: queue.Queue = queue.Queue()
        self.error: grpc.RpcError | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for update in self.call:
                self._updates.put(update)
        except grpc.RpcError as error:
            self.error = error
        self._updates.put(ENDED)

    def next(self, timeout: float = 10.0):
        return self._updates.get(timeout=timeout)

    def message(self, timeout: float = 15.0):
        """The next update that carries a message (heartbeats in between are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            update = self.next(max(0.1, deadline - time.monotonic()))
            assert update is not ENDED, self.error
            if update.HasField("message"):
                return update


@pytest.fixture(autouse=True)
def cancel_streams():
    yield
    while Reader.opened:
        Reader.opened.pop().call.cancel()


@pytest.fixture(scope="module")
def district_id() -> str:
    return f"d{uuid.uuid4().hex[:10]}"


@pytest.fixture
def volunteer(stack, world, district_id):
    """A volunteer of hand-published events: (id, token)."""
    vid = f"vol_{uuid.uuid4().hex[:12]}"
    return vid, token_for(stack, volunteer_principal(district_id, vid, world.courtyards[0]))


def dispatch(feed, world, district_id: str, volunteer_id: str) -> str:
    order_id = f"ord_{uuid.uuid4().hex[:12]}"
    feed.send(feed.order_event(ev.OrderDispatched(order=feed.order(order_id, courtyard=world.courtyards[0]),
                                                  volunteer_ids=[volunteer_id]), district_id, version=3))
    return order_id


@pytest.fixture(scope="module")
def replica(stack, notification, notification_env):
    """A second notification process on the same database and topics, serving two streams at most."""
    proc = stack.start_service("notification", port_offset=1, log_name="notification-replica",
                               extra_env={**notification_env, "NOTIFY_MAX_STREAMS": "2"})
    client = Inboxes(proc.grpc_target)
    client.http_base = proc.http_base
    yield client
    client.close()
    proc.stop()


def open_streams(replica) -> float:
    with urllib.request.urlopen(f"{replica.http_base}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples
                if s.name == "notification_watch_streams")


def test_a_stream_opens_with_the_unread_count_then_beats_and_brings_messages(inboxes, feed, world, district_id,
                                                                             volunteer):
    vid, token = volunteer
    first = dispatch(feed, world, district_id, vid)
    inboxes.wait_about(token, first, 1)
    reader = Reader(inboxes.watch(token))
    opening = reader.next()
    assert not opening.HasField("message") and opening.unread == 1
    started = time.monotonic()
    beat = reader.next(timeout=5)
    if beat.HasField("message"):  # stored just before the stream opened, announced just after: told again
        assert beat.message.subject_id == first
        started, beat = time.monotonic(), reader.next(timeout=5)
    assert not beat.HasField("message") and beat.unread == 1 and time.monotonic() - started < 3  # every second here
    second = dispatch(feed, world, district_id, vid)
    update = reader.message()
    assert update.message.subject_id == second and update.unread == 2 and not update.message.read
    assert update.message.link == f"/app/volunteer/tasks/{second}" and update.message.title == "新的服务任务"
    reader.call.cancel()
    assert reader.next() is ENDED


def test_watchers_on_either_replica_get_every_message_whichever_stored_it(inboxes, replica, feed, world, district_id,
                                                                          volunteer):
    vid, token = volunteer
    here, there = Reader(inboxes.watch(token)), Reader(replica.watch(token))
    assert here.next().unread == 0 and there.next().unread == 0
    # orders spread over the topic's partitions, so both replicas store some of the messages
    orders = {dispatch(feed, world, district_id, vid) for _ in range(6)}
    for reader in (here, there):
        got = {reader.message().message.subject_id for _ in orders}
        assert got == orders
    stored = inboxes.list(token).messages
    assert len(stored) == 6 and {m.subject_id for m in stored} == orders


def test_a_process_serves_at_most_its_cap_of_streams(replica, volunteer):
    _, token = volunteer
    # streams cancelled by earlier tests end once the server has seen the cancellation
    wait_until(lambda: open_streams(replica) == 0, timeout=10, what="no stream open on the replica")
    open_ = [Reader(replica.watch(token)) for _ in range(2)]
    for reader in open_:
        assert reader.next().unread == 0
    refused = Reader(replica.watch(token))
    assert refused.next() is ENDED and refused.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    open_[0].call.cancel()
    deadline = time.monotonic() + 10
    while True:  # the cancelled stream's slot comes free once the server has seen the cancellation
        again = Reader(replica.watch(token))
        if again.next() is not ENDED:
            break
        assert again.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() < deadline
        time.sleep(0.2)


def test_a_stream_ends_when_its_token_expires(inboxes, issuer, world, district_id):
    yard = world.courtyards[0]
    principal = Principal(subject=f"res_{uuid.uuid4().hex[:12]}", district_id=district_id, role=c.ROLE_RESIDENT,
                          unit_id=yard.unit_id, unit_level=yard.level, unit_path=tuple(yard.path))
    token, expires = issuer.issue(principal, ttl_seconds=3)
    reader = Reader(inboxes.watch(bearer(token)))
    assert reader.next().unread == 0
    while (update := reader.next(timeout=6)) is not ENDED:
        assert not update.HasField("message")  # heartbeats until the end
    assert reader.error is None and time.time() >= expires - 0.5
    with expect_error(grpc.StatusCode.UNAUTHENTICATED, contains="expired"):
        next(inboxes.watch(bearer(token)))
    with expect_error(grpc.StatusCode.UNAUTHENTICATED):
        next(inboxes.stub.WatchInbox(pb.WatchInboxRequest(), timeout=10))


def test_shutdown_ends_open_streams_instead_of_waiting_for_them(stack, notification_env, volunteer):
    _, token = volunteer
    proc = stack.start_service("notification", port_offset=2, log_name="notification-shutdown",
                               extra_env={**notification_env, "SHUTDOWN_GRACE_SECONDS": "20"})
    client = Inboxes(proc.grpc_target)
    try:
        readers = [Reader(client.watch(token)) for _ in range(2)]
        for reader in readers:
            assert reader.next().unread == 0
        started = time.monotonic()
        proc.stop(timeout=30)
        assert time.monotonic() - started < 8, "shutdown waited for the open streams"
        for reader in readers:
            while reader.next() is not ENDED:
                pass
            assert reader.error is None or reader.error.code() in (grpc.StatusCode.UNAVAILABLE,
                                                                   grpc.StatusCode.CANCELLED)
    finally:
        client.close()
        proc.stop()
