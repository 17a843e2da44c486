"""Ended sessions, so every service refuses their access tokens before they expire.

Registration publishes `SessionRevoked` on its events topic whenever a session ends (logout, a
password change, a spent refresh token presented again). Every service process keeps the
recently ended session ids in memory (`RevokedSessions`, a dict: the token check is one
membership test) and fills it from that topic (`RevocationFeed`). Every replica needs every
revocation, so the feed reads all partitions without a consumer group; it starts `LOOKBACK`
back in time, since an access token lives at most that long (registration refuses a longer
ACCESS_TOKEN_TTL_SECONDS), and forgets a session once its last token has expired.

Until the feed has read up to where the topic ended when it started, `ready` is False and the
service reports NOT_SERVING: a fresh replica never accepts a token another one already refuses.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time

from kafka import KafkaConsumer, TopicPartition
from prometheus_client import Gauge

from wenming.registration.v1 import events_pb2

from .events import PoisonEvent, decode, events_topic
from .kafka_clients import connection_options

log = logging.getLogger(__name__)

LOOKBACK_SECONDS = 24 * 3600  # the longest an access token may live
KEEP_AFTER_EXPIRY_SECONDS = 60  # beyond the verifier's 30 s leeway
REVOKED_TYPE = events_pb2.SessionRevoked.DESCRIPTOR.full_name

REVOKED_GAUGE = Gauge("auth_revoked_sessions", "Ended sessions whose access tokens could still be unexpired")


class RevokedSessions(dict):
    """Session id -> unix time after which its tokens are expired anyway. A dict, so the token
    check is the interpreter's own membership test (~70 ns, measured beside 10,000 entries)."""

    def add(self, session_id: str, until: float) -> None:
        self[session_id] = max(until, self.get(session_id, 0.0))

    def forget_expired(self, now: float) -> None:
        for session_id, until in list(self.items()):
            if until <= now:
                self.pop(session_id, None)
        REVOKED_GAUGE.set(len(self))


class RevocationFeed(threading.Thread):
    def __init__(self, bootstrap_servers: str, revoked: RevokedSessions, lookback_seconds: float = LOOKBACK_SECONDS):
        super().__init__(name="revocation-feed", daemon=True)
        self._topic = events_topic("registration")  # where sessions end (SessionRevoked)
        self._servers = bootstrap_servers
        self._revoked = revoked
        self._lookback = lookback_seconds
        self._positions: dict[TopicPartition, int] = {}
        self._catch_up: dict[TopicPartition, int] = {}  # end offsets when the feed started
        self._stopping = threading.Event()
        self.ready = False

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self.join(timeout)

    def _connect(self) -> KafkaConsumer:
        consumer = KafkaConsumer(bootstrap_servers=self._servers.split(","), group_id=None,
                                 client_id=f"revocations-{socket.gethostname()}-{os.getpid()}",
                                 enable_auto_commit=False, allow_auto_create_topics=False,
                                 request_timeout_ms=30_000, **connection_options())
        try:
            partitions = consumer.partitions_for_topic(self._topic)
            if not partitions:
                raise RuntimeError(f"topic {self._topic} does not exist yet")
            assigned = [TopicPartition(self._topic, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            if not self._catch_up:
                self._catch_up = consumer.end_offsets(assigned)
            since = consumer.offsets_for_times({tp: int((time.time() - self._lookback) * 1000) for tp in assigned})
            for tp in assigned:
                if tp in self._positions:  # after a reconnect, on from where this process was
                    consumer.seek(tp, self._positions[tp])
                elif since.get(tp) is not None:
                    consumer.seek(tp, since[tp].offset)
                else:  # nothing that recent
                    consumer.seek_to_end(tp)
        except Exception:
            consumer.close()
            raise
        return consumer

    def run(self) -> None:
        consumer, backoff = None, 0.5
        while not self._stopping.is_set():
            try:
                consumer = consumer or self._connect()
                for tp, records in consumer.poll(timeout_ms=500).items():
                    for record in records:
                        self._apply(record)
                    self._positions[tp] = records[-1].offset + 1
                if not self.ready:
                    self.ready = all(consumer.position(tp) >= end for tp, end in self._catch_up.items())
                self._revoked.forget_expired(time.time())
                backoff = 0.5
            except Exception:
                log.warning("revocation feed: reading %s failed; retrying in %.1fs", self._topic, backoff, exc_info=True)
                if consumer is not None:
                    with contextlib.suppress(Exception):
                        consumer.close()
                consumer = None
                self._stopping.wait(backoff)
                backoff = min(10.0, backoff * 2)
        if consumer is not None:
            consumer.close()

    def _apply(self, record) -> None:
        if dict(record.headers or ()).get("event_type", b"").decode() != REVOKED_TYPE:
            return
        try:
            _, revoked = decode(record.value)
        except PoisonEvent as exc:
            log.warning("revocation feed: skipping an undecodable record at %d@%d: %s", record.partition,
                        record.offset, exc)
            return
        until = revoked.tokens_expire_by.ToSeconds() + KEEP_AFTER_EXPIRY_SECONDS
        if until > time.time():
            self._revoked.add(revoked.session_id, until)
