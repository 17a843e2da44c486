"""The webhook channel (what a district's SMS or WeChat bridge receives, and what a failing one
costs: nothing to the inbox), health, metrics as catalogued, and settings that stop the start."""

from __future__ import annotations

import time
import urllib.request
import uuid

from prometheus_client.parser import text_string_to_metric_families

from tests.ops import metrics_catalog
from tests.support.waiting import wait_until
from tests.points.support import token_for, volunteer_principal
from wenming.ordering.v1 import events_pb2 as ev


def metrics(proc) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"{proc.http_base}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def webhook_results(proc) -> dict[str, float]:
    found = metrics(proc)
    return {result: found.get(("notification_channel_deliveries_total",
                               (("channel", "webhook"), ("result", result))), 0.0)
            for result in ("delivered", "failed", "dropped")}


def _dispatch(feed, world, district_id: str, volunteer_id: str) -> str:
    order_id = f"ord_{uuid.uuid4().hex[:12]}"
    feed.send(feed.order_event(ev.OrderDispatched(order=feed.order(order_id, courtyard=world.courtyards[0]),
                                                  volunteer_ids=[volunteer_id]), district_id, version=3))
    return order_id


def test_the_webhook_gets_each_new_message_as_json(stack, notification, inboxes, feed, world, webhook):
    district_id, vid = f"d{uuid.uuid4().hex[:10]}", f"vol_{uuid.uuid4().hex[:12]}"
    token = token_for(stack, volunteer_principal(district_id, vid, world.courtyards[0]))
    order_id = _dispatch(feed, world, district_id, vid)
    (message,) = inboxes.wait_about(token, order_id, 1)
    (received,) = wait_until(lambda: webhook.for_recipient(vid), what="the webhook delivery")
    assert received.key == message.message_id
    assert received.body == {
        "districtId": district_id, "recipientId": vid, "recipientRole": "ROLE_VOLUNTEER",
        "message": {"messageId": message.message_id, "kind": "MESSAGE_KIND_TASK_DISPATCHED", "title": "新的服务任务",
                    "body": message.body, "link": f"/app/volunteer/tasks/{order_id}", "subjectType": "order",
                    "subjectId": order_id, "createdAt": received.body["message"]["createdAt"], "read": False}}
    assert received.body["message"]["createdAt"].endswith("Z")


def test_a_failing_webhook_is_retried_counted_and_never_holds_up_the_inbox(stack, notification, inboxes, feed,
                                                                          world, webhook):
    district_id, vid = f"d{uuid.uuid4().hex[:10]}", f"vol_{uuid.uuid4().hex[:12]}"
    token = token_for(stack, volunteer_principal(district_id, vid, world.courtyards[0]))
    before = webhook_results(notification)
    try:
        webhook.status = 503  # the bridge is down: one attempt and one retry, then counted as failed
        down = _dispatch(feed, world, district_id, vid)
        inboxes.wait_about(token, down, 1)
        wait_until(lambda: webhook_results(notification)["failed"] == before["failed"] + 1, what="the failure counted")
        assert len(webhook.for_recipient(vid)) == 2
        # the bridge hangs past the 1 s deadline: ~2.5 s per message for the webhook, not for the inbox
        webhook.status, webhook.delay = 200, 2.5
        started = time.monotonic()
        slow = {_dispatch(feed, world, district_id, vid) for _ in range(3)}
        wait_until(lambda: slow <= {m.subject_id for m in inboxes.list(token).messages}, what="the inbox")
        assert time.monotonic() - started < 4
        wait_until(lambda: webhook_results(notification)["failed"] == before["failed"] + 4, timeout=30,
                   what="the timeouts counted")
    finally:
        webhook.status, webhook.delay = 200, 0.0
    assert webhook_results(notification)["dropped"] == before["dropped"]
    # the receiver's key in its URL never reaches the logs
    assert "secret-of-the-bridge" not in notification.log_path.read_text()


def test_health_and_metrics_as_catalogued(notification):
    with urllib.request.urlopen(f"{notification.http_base}/readyz", timeout=5) as reply:
        assert reply.status == 200
    with urllib.request.urlopen(f"{notification.http_base}/metrics", timeout=5) as reply:
        exposed = {f.name: f.type for f in text_string_to_metric_families(reply.read().decode())}
    own = [m for m in metrics_catalog.declared_metrics() if m.source.startswith("services/notification/")]
    assert {m.name for m in own} == {"notification_inbox_messages_total", "notification_watch_streams",
                                     "notification_watch_refused_total", "notification_channel_deliveries_total"}
    for metric in own:
        assert exposed.get(metric.family) == metric.kind, metric.name
    assert {"district_id", "kind"} == next(m.labels for m in own if m.name == "notification_inbox_messages_total")


def test_settings_that_cannot_work_stop_the_start(spawn):
    proc = spawn("notification", port_offset=3, log_name="notification-misconfigured",
                 extra_env={"NOTIFY_CHANNELS": "webhook,sms", "NOTIFY_MAX_STREAMS": "30", "GRPC_WORKERS": "32"})
    assert proc.process.wait(30) == 2
    log = proc.log_path.read_text()
    for problem in ("unknown channel(s) sms", "must include inbox", "NOTIFY_WEBHOOK_URL must be an http(s) URL",
                    "NOTIFY_MAX_STREAMS=30 leaves too few of GRPC_WORKERS=32"):
        assert problem in log
