"""The gateway's Server-Sent Events over real HTTP: GET /api/v1/notification/WatchInbox in front of
the real notification and registration processes, read as a browser's fetch() would."""

from __future__ import annotations

import http.client
import json
import time
import urllib.request
import uuid

import pytest

from services.common.auth import Principal
from tests.gateway.test_gateway import call
from tests.points.support import volunteer_principal
from tests.support.waiting import wait_until
from wenming.ordering.v1 import events_pb2 as ev

PATH = "/api/v1/notification/WatchInbox"


@pytest.fixture(scope="module")
def gateway(stack, registration, notification):
    proc = stack.start_service("gateway", port_offset=1, log_name="gateway-sse", extra_env={
        "REGISTRATION_GRPC_TARGET": registration.grpc_target, "NOTIFICATION_GRPC_TARGET": notification.grpc_target,
        **{f"{name.upper()}_GRPC_TARGET": "" for name in ("ordering", "points", "training", "media")},
        "SSE_MAX_STREAMS": "2"})
    yield proc
    proc.stop()


class Stream:
    """One GET of the stream, read line by line as the browser's reader would."""

    def __init__(self, gateway, token: str | None, header: str | None = None):
        port = int(gateway.http_base.rsplit(":", 1)[1])
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Accept": "text/event-stream"}
        if token or header:
            headers["Authorization"] = header or f"Bearer {token}"
        self.connection.request("GET", PATH, headers=headers)
        self.response = self.connection.getresponse()

    @property
    def status(self) -> int:
        return self.response.status

    def json(self) -> dict:
        return json.loads(self.response.read())

    def frame(self) -> dict[str, str]:
        """The next frame's fields ({} at the end of the stream)."""
        fields: dict[str, str] = {}
        while True:
            line = self.response.readline().decode()
            if not line:
                return fields
            if line == "\n":
                if fields:
                    return fields
                continue
            name, _, value = line.rstrip("\n").partition(": ")
            fields[name] = value

    def event(self, name: str, timeout: float = 15.0) -> dict:
        """The data of the next event called `name` (others in between are skipped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fields = self.frame()
            assert fields, "the stream ended"
            if fields.get("event") == name:
                return json.loads(fields["data"])
        raise AssertionError(f"no {name} event in {timeout:.0f}s")

    def close(self) -> None:
        """As a page closing its reader: the response (which holds the socket) and the connection."""
        self.response.close()
        self.connection.close()


def open_when_free(gateway, token: str) -> Stream:
    """A stream, once a slot is free (streams closed just before hold theirs a few seconds more)."""

    def attempt():
        stream = Stream(gateway, token)
        if stream.status == 200:
            return stream
        assert stream.status == 503
        stream.close()
        return None

    return wait_until(attempt, timeout=15, interval=0.5, what="a free stream slot")


def volunteer_token(issuer, world, district_id: str, volunteer_id: str, **options) -> str:
    return issuer.issue(volunteer_principal(district_id, volunteer_id, world.courtyards[0]), **options)[0]


def test_the_stream_carries_new_messages_and_heartbeats_as_proto3_json(gateway, issuer, world, feed):
    district_id, vid = f"d{uuid.uuid4().hex[:10]}", f"vol_{uuid.uuid4().hex[:12]}"
    token = volunteer_token(issuer, world, district_id, vid)
    stream = Stream(gateway, token)
    assert stream.status == 200
    assert stream.response.getheader("Content-Type") == "text/event-stream; charset=utf-8"
    assert stream.response.getheader("Cache-Control") == "no-cache, no-transform"
    assert stream.response.getheader("X-Accel-Buffering") == "no"
    assert stream.frame() == {"retry": "5000"}
    assert stream.frame() == {"event": "heartbeat", "data": '{"unread":"0"}'}  # at once, with the unread count

    order_id = f"ord_{uuid.uuid4().hex[:12]}"
    feed.send(feed.order_event(ev.OrderDispatched(order=feed.order(order_id, courtyard=world.courtyards[0]),
                                                  volunteer_ids=[vid]), district_id, version=3))
    update = stream.event("inbox")
    message = update["message"]
    assert update["unread"] == "1" and message["subjectId"] == order_id and message["read"] is False
    assert (message["kind"], message["title"], message["link"], message["subjectType"]) == (
        "MESSAGE_KIND_TASK_DISPATCHED", "新的服务任务", f"/app/volunteer/tasks/{order_id}", "order")
    assert message["messageId"].startswith("msg_") and message["createdAt"].endswith("Z")

    # the same inbox over REST, and marking it read shows in the next heartbeat
    status, body, _ = call(gateway, "/api/v1/notification/ListInbox", {"unreadOnly": True}, token)
    assert status == 200 and [m["messageId"] for m in body["messages"]] == [message["messageId"]]
    status, body, _ = call(gateway, "/api/v1/notification/MarkInboxRead", {"all": True}, token)
    assert status == 200
    beats = [stream.event("heartbeat") for _ in range(2)]  # one may have left before the marking
    assert beats[-1] == {"unread": "0"}
    # the stream is not a REST method
    assert call(gateway, PATH, {}, token)[0] == 404
    stream.close()
    assert token not in gateway.log_path.read_text()


def test_a_refused_token_answers_401_json_before_any_stream(gateway, issuer, world):
    expired = issuer.issue(Principal(subject="vol_gone", district_id="d1", role=2), ttl_seconds=60,
                           now=time.time() - 600)[0]
    for token, header in ((None, None), (None, "Basic dXNlcjpwYXNz"), ("not-a-token", None), (expired, None)):
        stream = Stream(gateway, token, header)
        assert stream.status == 401 and stream.response.getheader("Content-Type") == "application/json"
        assert stream.json()["error"]["status"] == "UNAUTHENTICATED"
        stream.close()


def test_the_stream_closes_when_the_token_expires(gateway, issuer, world):
    token = volunteer_token(issuer, world, f"d{uuid.uuid4().hex[:10]}", "vol_short", ttl_seconds=3)
    stream = Stream(gateway, token)
    assert stream.status == 200
    started = time.monotonic()
    while stream.frame():
        assert time.monotonic() - started < 10
    stream.close()
    # reconnecting with it is refused: the page logs in again (or refreshes its token) first
    again = Stream(gateway, token)
    assert again.status == 401
    again.close()


def test_streams_beyond_the_cap_get_503_and_rest_calls_go_on(gateway, issuer, world, module_district):
    district_id = f"d{uuid.uuid4().hex[:10]}"
    streams = [Stream(gateway, volunteer_token(issuer, world, district_id, f"vol_{i}")) for i in range(2)]
    assert [s.status for s in streams] == [200, 200]
    refused = Stream(gateway, volunteer_token(issuer, world, district_id, "vol_third"))
    assert refused.status == 503 and refused.response.getheader("Retry-After") == "5"
    assert refused.json()["error"] == {"code": 503, "status": "UNAVAILABLE", "message": "实时消息连接已满，请稍后重试"}
    refused.close()
    # REST has threads of its own
    status, body, _ = call(gateway, "/api/v1/registration/Login", {
        "districtId": module_district.id, "kind": "PRINCIPAL_KIND_ADMIN", "login": "center-admin",
        "password": "Test-pass-2026"})
    assert status == 200 and body["accessToken"]
    # a page that leaves frees its slot (the gateway notices a closed connection within a second)
    streams[0].close()
    open_when_free(gateway, volunteer_token(issuer, world, district_id, "vol_later")).close()
    streams[1].close()
    with urllib.request.urlopen(f"{gateway.http_base}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    assert 'gateway_sse_requests_total{result="busy"}' in text and "gateway_sse_streams " in text


def test_shutdown_ends_open_streams_cleanly(gateway, issuer, world):
    """Last in this module: it stops the gateway."""
    stream = open_when_free(gateway, volunteer_token(issuer, world, f"d{uuid.uuid4().hex[:10]}", "vol_open"))
    assert stream.frame() == {"retry": "5000"}
    started = time.monotonic()
    gateway.stop()
    assert time.monotonic() - started < 8
    while stream.frame():
        pass  # the heartbeat already on its way, then the end of the response
    stream.close()
    assert '"level": "ERROR"' not in gateway.log_path.read_text()
