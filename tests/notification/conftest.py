"""The notification service as a real process beside a real ordering process (own database and
clock), on the session's registration, broker and database; a webhook receiver for its channel."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.auth import TokenIssuer
from tests.ordering.support import Clock, Ordering, World
from tests.support.waiting import wait_until
from tests.points.support import Feed
from tests.support.events import TopicTap
from tests.support.registration import District
from tests.support.stack import CATCH_UP_SECONDS

from .support import Inboxes, WebhookReceiver
from services.common.events import events_topic

NOTIFICATION_TOPIC = events_topic("notification")


@pytest.fixture(scope="package")
def webhook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="package")
def notification_env(webhook) -> dict[str, str]:
    # fast heartbeats; the webhook channel on, with a short deadline and one retry
    return {"NOTIFY_HEARTBEAT_SECONDS": "1", "NOTIFY_MAX_STREAMS": "8", "NOTIFY_CHANNELS": "inbox,webhook",
            "NOTIFY_WEBHOOK_URL": webhook.url, "NOTIFY_WEBHOOK_TIMEOUT_SECONDS": "1", "NOTIFY_WEBHOOK_RETRIES": "1"}


@pytest.fixture(scope="package")
def notification(stack, registration, notification_env):
    proc = stack.start_service("notification", port_offset=0, extra_env=notification_env)
    yield proc
    proc.stop()


@pytest.fixture(scope="package")
def inboxes(notification) -> Inboxes:
    client = Inboxes(notification.grpc_target)
    yield client
    client.close()


@pytest.fixture(scope="package")
def notification_db(stack, mongo_client):
    return mongo_client[f"{stack.db_prefix}notification"]


@pytest.fixture(scope="package")
def clock(stack) -> Clock:
    clock = Clock(stack.data_dir / f"notification-ordering-clock-{stack.run_id}")
    yield clock
    clock.path.unlink(missing_ok=True)


@pytest.fixture
def shifted(clock):
    yield clock
    clock.set(0)


@pytest.fixture(scope="package")
def ordering(stack, registration, mongo_client, clock):
    """Ordering with a database (and job leases) of its own, so tests/ordering's process is never
    held up by this one's, and on ports apart from the ones tests/ordering uses."""
    prefix = f"{stack.db_prefix}ntf_"
    proc = stack.start_service("ordering", port_offset=1, database_prefix=prefix, log_name="ordering-for-notification",
                               extra_env={"SCHEDULER_INTERVAL_SECONDS": "0.5", "CLOCK_OFFSET_FILE": str(clock.path)})
    client = Ordering(proc.grpc_target, mongo_client[f"{prefix}ordering"])
    yield client
    client.close()
    proc.stop()


@pytest.fixture(scope="package")
def issuer(stack) -> TokenIssuer:
    return TokenIssuer(Path(stack.secrets["JWT_PRIVATE_KEY_FILE"]).read_text())


def new_world(registration, ordering, issuer, notification_db) -> tuple[District, World]:
    district = District(registration.grpc_target, registration.env)
    world = World(district, ordering, issuer)
    # the admins of all eight units are known before any order names a unit
    wait_until(lambda: notification_db.registry_admins.count_documents({"district_id": district.id}) == 8,
               timeout=CATCH_UP_SECONDS, what="the unit admins in notification's read model")
    return district, world


@pytest.fixture(scope="package")
def world(registration, ordering, issuer, notification, notification_db) -> World:
    """One district for the package: tests keep to orders of their own in it."""
    district, w = new_world(registration, ordering, issuer, notification_db)
    yield w
    district.close()


@pytest.fixture(scope="package")
def feed(stack):
    """Publishes ordering's contract events by hand (for events ordering does not publish yet, and
    for re-deliveries)."""
    f = Feed(stack.kafka)
    yield f
    f.close()


@pytest.fixture
def notification_events(stack, notification):
    tap = TopicTap(stack.kafka, NOTIFICATION_TOPIC)
    yield tap
    tap.close()
