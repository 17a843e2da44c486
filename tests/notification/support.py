"""Helpers for the notification tests: a client of the inbox, waiting for messages, and a webhook
receiver standing in for a district's SMS bridge."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc

from tests.support.waiting import wait_until
from wenming.notification.v1 import notification_pb2 as pb
from wenming.notification.v1 import notification_pb2_grpc

K = pb.MessageKind
Metadata = list[tuple[str, str]]


class Inboxes:
    """A client of one notification process."""

    def __init__(self, target: str):
        self.target = target
        self.channel = grpc.insecure_channel(target)
        self.stub = notification_pb2_grpc.NotificationServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def list(self, token: Metadata, *, unread_only: bool = False, size: int = 100,
             page_token: str = "") -> pb.ListInboxResponse:
        return self.stub.ListInbox(pb.ListInboxRequest(unread_only=unread_only, page={
            "page_size": size, "page_token": page_token}), metadata=token, timeout=10)

    def about(self, token: Metadata, subject_id: str) -> list[pb.InboxMessage]:
        """The caller's messages about one order, oldest first."""
        return [m for m in reversed(self.list(token).messages) if m.subject_id == subject_id]

    def wait_about(self, token: Metadata, subject_id: str, count: int, timeout: float = 30) -> list[pb.InboxMessage]:
        """Waits until the caller has `count` messages about the subject, then makes sure no more come."""
        found = wait_until(lambda: len(m := self.about(token, subject_id)) >= count and m, timeout=timeout,
                           what=f"{count} message(s) about {subject_id}")
        assert len(found) == count, [(m.title, m.body) for m in found]
        return found

    def watch(self, token: Metadata, timeout: float = 60):
        return self.stub.WatchInbox(pb.WatchInboxRequest(), metadata=token, timeout=timeout)


def summary(messages: list[pb.InboxMessage]) -> list[tuple[int, str]]:
    return [(m.kind, m.title) for m in messages]


@dataclass
class Received:
    body: dict
    key: str


@dataclass
class WebhookReceiver:
    """An HTTP server recording the POSTs it gets; `status` and `delay` make it fail or lag."""

    status: int = 200
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
                receiver.received.append(Received(json.loads(body), self.headers["Idempotency-Key"]))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/wenming/messages?key=secret-of-the-bridge"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def for_recipient(self, recipient_id: str) -> list[Received]:
        return [r for r in self.received if r.body.get("recipientId") == recipient_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
