"""python -m services.notification: the inbox gRPC server (+ ops HTTP), its consumers and the
listener that wakes this process's live streams."""

from services.common.events import events_topic
from services.common.runtime import ServiceApp
from wenming.notification.v1 import notification_pb2_grpc

from .app import build, ensure_indexes, extra_settings
from .models import AGGREGATES
from .servicer import SERVICE_NAME, NotificationServicer
from .watch import BroadcastListener


def main() -> None:
    app = ServiceApp("notification", extra_settings)
    domain = build(app.settings, app.db, app.verifier)
    ensure_indexes(domain)
    app.add_grpc(notification_pb2_grpc.add_NotificationServiceServicer_to_server,
                 NotificationServicer(domain.inbox, domain.watching), SERVICE_NAME)
    for model in AGGREGATES:
        app.add_outbox(model.collection())
    app.add_event_consumer("admins", [events_topic("registration")], domain.admins.handlers())
    app.add_event_consumer("orders", [events_topic("ordering")], domain.notifier.handlers())
    # wakes the streams of the process it runs in: every process that serves gRPC has one
    app.add_background(BroadcastListener(app.settings.kafka_bootstrap_servers, app.topic, domain.hub),
                       every_process=True)
    for channel in domain.channels:
        app.add_background(channel)
    # open streams end at once, or they would hold the whole grace period
    app.on_shutdown(domain.hub.close)
    app.run()


if __name__ == "__main__":
    main()
