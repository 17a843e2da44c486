"""Server-Sent Events for the apps: notification's WatchInbox as `text/event-stream`.

    GET /api/v1/notification/WatchInbox
    Authorization: Bearer <token>

    retry: 5000

    event: heartbeat
    data: {"unread":"2"}

    event: inbox
    data: {"message":{"messageId":"msg_…","kind":"MESSAGE_KIND_TASK_DISPATCHED",…},"unread":"3"}

`data` is the InboxUpdate in proto3 JSON (lowerCamelCase, int64 as strings). The first event is a
heartbeat with the current unread count, sent at once (so a refused token answers 401 JSON before
any stream starts); then one `inbox` event per new message and a heartbeat every 20 s. The stream
closes when the token expires or the service behind it goes away; the page reconnects (after a
401, with a fresh token).

Each open stream holds one waitress thread. The gateway runs SSE_MAX_STREAMS threads for streams
on top of the HTTP_THREADS that REST calls use, so streams never starve REST; beyond the cap (or
when the notification replicas are full) the answer is 503. Tokens travel only in the header and
are never logged.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
from flask import Blueprint, Response, request
from google.protobuf import json_format
from prometheus_client import Counter, Gauge

from wenming.notification.v1 import notification_pb2 as pb

from .api import _from_rpc_error, json_error
from .upstreams import Upstream

log = logging.getLogger(__name__)

RETRY_MILLISECONDS = 5000
REAP_SECONDS = 1.0
# for the server: keep reading a connection while its response runs, so a closed page is noticed
WAITRESS_ADJUSTMENTS: dict[str, Any] = {"channel_request_lookahead": 1}
BUSY = "实时消息连接已满，请稍后重试"
AWAY = "实时消息服务暂不可用，请稍后重试"

OPEN = Gauge("gateway_sse_streams", "Server-Sent Event streams open")
REQUESTS = Counter("gateway_sse_requests_total", "Server-Sent Event stream requests by result (opened; busy: "
                   "over the cap here or behind; unauthenticated; refused: any other error)", ["result"])
for _result in ("opened", "busy", "unauthenticated", "refused"):
    REQUESTS.labels(_result)


def sse_event(update: pb.InboxUpdate) -> bytes:
    name = "inbox" if update.HasField("message") else "heartbeat"
    data = json.dumps(json_format.MessageToDict(update, always_print_fields_with_no_presence=True),
                      ensure_ascii=False, separators=(",", ":"))
    return f"event: {name}\ndata: {data}\n\n".encode()


def _busy(message: str = BUSY) -> Response:
    response = json_error(503, "UNAVAILABLE", message)
    response.headers["Retry-After"] = str(RETRY_MILLISECONDS // 1000)
    return response


class _Stream:
    """One open stream: the upstream call and the slot it holds, given back exactly once."""

    def __init__(self, streams: InboxStreams, call, first: pb.InboxUpdate, client_gone: Callable[[], bool]):
        self._streams = streams
        self._call = call
        self._first = first
        self.client_gone = client_gone

    def __iter__(self):
        yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
        yield sse_event(self._first)
        try:
            for update in self._call:
                yield sse_event(update)
        except grpc.RpcError as error:  # cancelled (the page left, shutdown), or the upstream went away
            if error.code() != grpc.StatusCode.CANCELLED:
                log.info("inbox stream ended by the upstream: %s", error.code().name)

    def cancel(self) -> None:
        self._call.cancel()

    def close(self) -> None:
        """Called by the WSGI server when the response ends, however it ends."""
        self._call.cancel()
        self._streams.release(self)


class InboxStreams:
    """The route, the slots, and a reaper: a page that left is noticed within a second (waitress
    keeps reading the connection while the response runs, WAITRESS_ADJUSTMENTS), its upstream call
    cancelled and its slot freed, instead of at the second heartbeat written into a closed socket."""

    def __init__(self, upstream: Upstream | None, max_streams: int, max_seconds: float):
        self._max = max_streams
        self._max_seconds = max_seconds
        self._lock = threading.Lock()
        self._open: set[_Stream] = set()
        self._reserved = 0
        self._stopping = threading.Event()
        self._watch = upstream.channel.unary_stream(
            f"/{upstream.full_name}/WatchInbox", request_serializer=pb.WatchInboxRequest.SerializeToString,
            response_deserializer=pb.InboxUpdate.FromString) if upstream else None
        if self._watch is not None:
            threading.Thread(target=self._reap, name="sse-reaper", daemon=True).start()

    def blueprint(self) -> Blueprint:
        bp = Blueprint("streams", __name__)
        bp.add_url_rule("/api/v1/notification/WatchInbox", "watch_inbox", self._watch_inbox, methods=["GET"])
        return bp

    def close(self, timeout: float = 5.0) -> None:
        """Shutdown: ends every open stream and waits (up to `timeout`) until their responses have
        finished, so the server stops with no stream half-written."""
        self._stopping.set()
        with self._lock:
            streams = list(self._open)
        for stream in streams:
            stream.cancel()
        deadline = time.monotonic() + timeout
        while self._open and time.monotonic() < deadline:
            time.sleep(0.05)

    def _reap(self) -> None:
        while not self._stopping.wait(REAP_SECONDS):
            with self._lock:
                gone = [stream for stream in self._open if stream.client_gone()]
            for stream in gone:
                stream.cancel()

    # ---- slots ----

    def _reserve(self) -> bool:
        with self._lock:
            if self._reserved >= self._max:
                return False
            self._reserved += 1
        OPEN.inc()
        return True

    def _unreserve(self) -> None:
        with self._lock:
            self._reserved -= 1
        OPEN.dec()

    def release(self, stream: _Stream) -> None:
        with self._lock:
            if stream not in self._open:
                return
            self._open.discard(stream)
        self._unreserve()

    # ---- the route ----

    def _watch_inbox(self) -> Response:
        if self._watch is None:
            return json_error(404, "NOT_FOUND", "no service 'notification' behind this gateway")
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            REQUESTS.labels("unauthenticated").inc()
            return json_error(401, "UNAUTHENTICATED", "send 'Authorization: Bearer <token>'")
        if not self._reserve():
            REQUESTS.labels("busy").inc()
            return _busy()
        call = self._watch(pb.WatchInboxRequest(), metadata=(("authorization", auth),), timeout=self._max_seconds)
        try:
            first = next(call)
        except (grpc.RpcError, StopIteration) as error:
            self._unreserve()
            return self._refused(error)
        stream = _Stream(self, call, first, request.environ.get("waitress.client_disconnected", lambda: False))
        with self._lock:
            self._open.add(stream)
        REQUESTS.labels("opened").inc()
        return Response(stream, mimetype="text/event-stream", headers={
            "Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"})

    @staticmethod
    def _refused(error: grpc.RpcError | StopIteration) -> Response:
        if isinstance(error, StopIteration):  # ended before its first update: the server is going away
            REQUESTS.labels("busy").inc()
            return _busy(AWAY)
        code = error.code()
        if code in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE):
            REQUESTS.labels("busy").inc()
            return _busy(BUSY if code == grpc.StatusCode.RESOURCE_EXHAUSTED else AWAY)
        REQUESTS.labels("unauthenticated" if code == grpc.StatusCode.UNAUTHENTICATED else "refused").inc()
        return _from_rpc_error(error)
