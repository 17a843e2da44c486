"""python -m services.ordering: the ordering gRPC server (+ ops HTTP), its consumers and schedulers."""

from services.common import pii_rotation
from services.common.events import events_topic
from services.common.listing import IndexFollower
from services.common.pii_rotation import PiiRotation, Sealed, Target
from services.common.runtime import ServiceApp
from wenming.ordering.v1 import ordering_pb2_grpc

from .app import build, ensure_indexes, extra_settings
from .migrations import migrate
from .models import AGGREGATES, Order
from .orders import ADDRESS_FIELD, CONTACT_FIELD
from .servicer import SERVICE_NAME, OrderingServicer

ROLLUP_INTERVAL_SECONDS = 15


def main() -> None:
    app = ServiceApp("ordering", extra_settings)
    domain = build(app.settings, app.db)
    ensure_indexes(domain)
    migrate(app.db, domain.index)
    app.add_grpc(ordering_pb2_grpc.add_OrderingServiceServicer_to_server, OrderingServicer(domain), SERVICE_NAME)
    app.add_cache(domain.menu.cache)
    app.add_cache(domain.taxonomies.cache)
    for model in AGGREGATES:
        app.add_outbox(model.collection())
    app.add_event_consumer("registry", [events_topic("registration")], domain.registry.handlers())
    app.add_event_consumer("certifications", [events_topic("training")], domain.certifications.handlers())
    # an index entry left behind by a process that died after its order's write is repaired from
    # the event that write queued
    own = [events_topic("ordering")]
    app.add_consumer(lambda dlq: IndexFollower(
        bootstrap_servers=app.settings.kafka_bootstrap_servers, group_id="ordering-index", topics=own,
        dlq_producer=dlq, repair=domain.index.repair, aggregate_types=("order", "activity")), own)
    # the no-shows and complaints the loop itself knows of (credit.py)
    app.add_event_consumer("credit", own, domain.credit.handlers())
    interval = app.settings.extra["scheduler_interval_seconds"]
    app.add_job("escalate-overdue-orders", domain.orders.run_sla, interval)
    app.add_job("close-unrated-orders", domain.orders.close_unrated, interval)
    app.add_job("roll-up-order-trends", domain.trends.roll_up, ROLLUP_INTERVAL_SECONDS)
    # after a personal-data key rotation, orders' addresses and contact numbers are re-encrypted
    rotation = PiiRotation(app.settings.extra["pii_vault"], app.db["pii_rotation"], [
        Target(Order.collection(), [Sealed("address_enc", ADDRESS_FIELD), Sealed("contact_enc", CONTACT_FIELD)])])
    app.add_job("pii-rotation", rotation.run, pii_rotation.INTERVAL_SECONDS)
    app.run()


if __name__ == "__main__":
    main()
