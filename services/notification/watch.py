"""Live inbox updates (WatchInbox) across replicas.

A message is stored by whichever replica consumed its source event, but the person watching may
be connected to any replica. So every replica reads its own topic from the end, without a
consumer group (nothing committed, nothing left on the broker), and each InboxMessageCreated wakes
the watchers of that recipient in this process (`BroadcastListener` → `WatchHub.publish`).

A stream starts with the unread count, then carries one update per new message and a heartbeat
(the unread count) every `heartbeat_seconds`; it ends when the caller's token expires, when the
process shuts down, or when the caller reads so slowly that its updates pile up (it reconnects
and reads its inbox). Each stream holds a gRPC worker thread, so a process serves at most
`max_streams` of them (RESOURCE_EXHAUSTED beyond) and the rest of its workers stay free for calls.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

from services.common.auth import Principal, TokenVerifier
from services.common.errors import ResourceExhausted, Unauthenticated, Unavailable
from services.common.tail import TopicTail, decode_of_type
from wenming.notification.v1 import events_pb2
from wenming.notification.v1 import notification_pb2 as pb

from . import metrics

log = logging.getLogger(__name__)

BACKLOG = 100  # updates a stream may fall behind before it is ended
READY_WAIT_SECONDS = 5.0
# message ids recently passed on: the same event published twice (two replicas' relays racing for
# one outbox, or a relay's retry) wakes nobody twice
RECENT = 10_000
ENDED = object()  # what Watch.next answers once the stream is closed


class Watch:
    """One open stream's mailbox."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=BACKLOG)
        self._closed = threading.Event()

    def offer(self, message: pb.InboxMessage) -> None:
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            self.close()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(ENDED)

    def next(self, timeout: float):
        """The next message, None when `timeout` passed without one, or ENDED once closed."""
        if self._closed.is_set():
            return ENDED
        try:
            item = self._queue.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None
        return ENDED if self._closed.is_set() else item


class WatchHub:
    """The open streams of this process, by recipient."""

    def __init__(self, max_streams: int):
        self._max = max_streams
        self._lock = threading.Lock()
        self._watches: dict[tuple[str, str], set[Watch]] = {}
        self._open = 0
        self._closing = False
        self.ready = threading.Event()  # set once the listener reads from the end of the topic

    @contextlib.contextmanager
    def open(self, district_id: str, recipient_id: str) -> Iterator[Watch]:
        if not self.ready.wait(READY_WAIT_SECONDS):
            metrics.WATCH_REFUSED.labels("starting").inc()
            raise Unavailable("live updates are starting; reconnect in a moment")
        key = (district_id, recipient_id)
        watch = Watch()
        with self._lock:
            if self._closing:
                metrics.WATCH_REFUSED.labels("shutting_down").inc()
                raise Unavailable("this replica is shutting down; reconnect")
            if self._open >= self._max:
                metrics.WATCH_REFUSED.labels("limit").inc()
                raise ResourceExhausted(f"this replica already serves {self._max} live streams; reconnect later")
            self._open += 1
            self._watches.setdefault(key, set()).add(watch)
        metrics.WATCH_STREAMS.inc()
        try:
            yield watch
        finally:
            with self._lock:
                self._open -= 1
                watches = self._watches.get(key, set())
                watches.discard(watch)
                if not watches:
                    self._watches.pop(key, None)
            metrics.WATCH_STREAMS.dec()

    def publish(self, district_id: str, recipient_id: str, message: pb.InboxMessage) -> None:
        with self._lock:
            watches = list(self._watches.get((district_id, recipient_id), ()))
        for watch in watches:
            watch.offer(message)

    def close(self) -> None:
        """Ends every stream and refuses new ones (shutdown)."""
        with self._lock:
            self._closing = True
            watches = [w for ws in self._watches.values() for w in ws]
        for watch in watches:
            watch.close()


class Watching:
    """The update stream of one caller."""

    def __init__(self, hub: WatchHub, verifier: TokenVerifier, unread: Callable[[Principal], int],
                 heartbeat_seconds: float):
        self.hub = hub
        self.verifier = verifier
        self.unread = unread
        self.heartbeat = heartbeat_seconds

    def updates(self, principal: Principal, on_end: Callable[[Callable[[], None]], bool]) -> Iterator[pb.InboxUpdate]:
        """Yields the caller's updates until the token expires or the stream is closed;
        `on_end(callback)` has the stream closed when the caller goes away (False: gone already)."""
        _, expires = self.verifier.verify(principal.token)
        if expires <= time.time():  # expired, though still inside the verifier's leeway
            raise Unauthenticated("token expired: log in again")
        with self.hub.open(principal.district_id, principal.subject) as watch:
            if not on_end(watch.close):
                return
            yield pb.InboxUpdate(unread=self.unread(principal))
            beat = time.monotonic() + self.heartbeat
            while True:
                left = expires - time.time()
                if left <= 0:
                    return
                item = watch.next(min(beat - time.monotonic(), left))
                if item is ENDED:
                    return
                if item is not None:
                    yield pb.InboxUpdate(message=item, unread=self.unread(principal))
                elif time.monotonic() >= beat:
                    yield pb.InboxUpdate(unread=self.unread(principal))
                else:
                    continue  # the token's expiry came first: checked at the top
                beat = time.monotonic() + self.heartbeat


class BroadcastListener(TopicTail):
    """Reads the service's own topic from its end and wakes this process's watchers."""

    def __init__(self, bootstrap_servers: str, topic: str, hub: WatchHub):
        super().__init__("watch-listener", bootstrap_servers, topic, self._wake, on_connect=hub.ready.set)
        self._hub = hub
        self._recent: OrderedDict[str, None] = OrderedDict()

    def _wake(self, record) -> None:
        decoded = decode_of_type(record, events_pb2.InboxMessageCreated, "watch listener")
        if decoded is None:
            return
        envelope, payload = decoded
        message_id = payload.message.message_id
        if message_id in self._recent:
            return
        self._recent[message_id] = None
        if len(self._recent) > RECENT:
            self._recent.popitem(last=False)
        self._hub.publish(envelope.district_id, payload.recipient_id, payload.message)
