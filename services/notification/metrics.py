"""Notification's Prometheus metrics, beside the kit's RPC, outbox and consumer metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from wenming.notification.v1 import notification_pb2 as pb

MESSAGES = Counter("notification_inbox_messages_total", "Inbox messages stored, by district and kind",
                   ["district_id", "kind"])
# summed over the pod's gRPC processes (GRPC_PROCESSES), each counting its own streams
WATCH_STREAMS = Gauge("notification_watch_streams", "WatchInbox streams open in this pod",
                      multiprocess_mode="livesum")
WATCH_REFUSED = Counter("notification_watch_refused_total", "WatchInbox streams refused, by reason "
                        "(limit: the process's cap; starting; shutting_down)", ["reason"])
DELIVERIES = Counter("notification_channel_deliveries_total", "Messages handed to an external channel, by "
                     "result (delivered, failed after its retries, dropped because its queue was full)",
                     ["channel", "result"])

# visible from zero, so increase() sees the first refusal
for _reason in ("limit", "starting", "shutting_down"):
    WATCH_REFUSED.labels(_reason)


def kind_name(kind: int) -> str:
    return pb.MessageKind.Name(kind)


def channel_results(channel: str) -> None:
    """An external channel's counters, visible from zero once it is configured."""
    for result in ("delivered", "failed", "dropped"):
        DELIVERIES.labels(channel, result)
