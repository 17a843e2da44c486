"""Delivery channels: where a message goes besides being shown in the app.

A channel is anything with a `name` and `deliver(recipient, message) -> bool`. The in-app inbox
(inbox.py) is the channel of record: every message is stored there first, and only a message the
inbox stored for the first time goes on to the other channels, so a re-delivered event reaches
nobody twice. The other channels are best effort and must never hold the inbox up: each takes
the message into a bounded queue of its own and delivers from its own thread (a crash loses
what is queued; a district needing every message in another system reads InboxMessageCreated
from Kafka instead).

The webhook channel below is the example a district uses to bridge SMS or WeChat subscription
messages (docs/notification.md: "Adding a channel").
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from typing import Protocol

from google.protobuf import json_format

from services.common.retry import Backoff, Retry
from services.common.runtime import Background

from . import metrics
from .messages import Message, Recipient
from .translate import created_msg

log = logging.getLogger(__name__)
# between deliveries of one message: 0.5 s, 1 s, then 2 s at most
WEBHOOK_BACKOFF = Backoff(first_seconds=0.5, max_seconds=2.0)


class Channel(Protocol):
    name: str

    def deliver(self, recipient: Recipient, message: Message) -> bool:
        """Takes the message for `recipient`; True when it was taken (stored, or queued)."""


class ExternalChannel(Channel, Background, Protocol):
    """A channel beside the inbox: it delivers from a worker of its own, started and stopped with
    the service (ServiceApp.add_background)."""


def webhook_body(recipient: Recipient, message: Message) -> bytes:
    """The JSON a webhook receives: InboxMessageCreated in proto3 JSON (lowerCamelCase) and the district."""
    created = json_format.MessageToDict(created_msg(recipient, message), always_print_fields_with_no_presence=True)
    return json.dumps({"districtId": recipient.district_id, **created}, ensure_ascii=False).encode()


_STOP = object()


class WebhookChannel:
    """POSTs each message as JSON to one URL: a deadline per attempt, a bounded number of retries
    (5xx, 429 and network errors; any other answer is final), failures counted, never blocking.
    The receiver deduplicates by the `Idempotency-Key` header (the message id)."""

    name = "webhook"

    def __init__(self, url: str, *, timeout_seconds: float, retries: int, queue_size: int):
        self._url = url
        self._timeout = timeout_seconds
        self._retries = retries
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._run, name="channel-webhook", daemon=True)
        metrics.channel_results(self.name)

    def deliver(self, recipient: Recipient, message: Message) -> bool:
        try:
            self._queue.put_nowait((message.message_id, webhook_body(recipient, message)))
        except queue.Full:
            metrics.DELIVERIES.labels(self.name, "dropped").inc()
            log.warning("webhook queue full: message %s not forwarded", message.message_id)
            return False
        return True

    # ---- the worker (started and stopped with the process, ServiceApp.add_background) ----

    def start(self) -> None:
        self._worker.start()

    def request_stop(self) -> None:
        self._stopping.set()  # retries stop waiting

    def stop(self, timeout: float = 5.0) -> None:
        """What is queued is still tried once, until `timeout`."""
        self.request_stop()
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            pass
        self._worker.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            message_id, body = item
            result = "delivered" if self._post(message_id, body) else "failed"
            metrics.DELIVERIES.labels(self.name, result).inc()

    def _post(self, message_id: str, body: bytes) -> bool:
        request = urllib.request.Request(self._url, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8", "Idempotency-Key": message_id,
            "User-Agent": "wenming-notification"})
        why, tries = "", 0
        # the stopping event ends the waits: no more attempts once shutting down
        for _ in Retry(self._retries + 1, WEBHOOK_BACKOFF).attempts(wait=self._stopping.wait):
            tries += 1
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as reply:
                    reply.read()
                return True
            except urllib.error.HTTPError as error:
                why = f"HTTP {error.code}"
                if error.code < 500 and error.code != 429:
                    break  # refused for good: retrying changes nothing
            except OSError as error:  # refused, unreachable, timed out
                why = type(error).__name__
        # the URL is not logged: it may carry the receiver's key
        log.warning("webhook delivery of %s failed after %d attempt(s): %s", message_id, tries, why)
        return False
