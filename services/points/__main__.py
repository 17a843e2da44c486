"""python -m services.points: the points gRPC server (+ ops HTTP), its consumers and jobs."""

from services.common import exports, pii_rotation
from services.common.events import events_topic
from services.common.pii_rotation import PiiRotation, Sealed, Target
from services.common.runtime import ServiceApp
from wenming.points.v1 import points_pb2_grpc

from .app import build, ensure_indexes, extra_settings, publish_balance_totals
from .certificates import blueprint
from .consumer import LedgerConsumer
from .models import Account, Certificate, Commendation, GradeAssessment, GradeEvidence, Merchant, \
    PerkRulesDocument, Redemption, StoreItem
from .perks import MERCHANT_PHONE_FIELD
from .servicer import PUBLIC_METHODS, SERVICE_NAME, PointsServicer


def main() -> None:
    app = ServiceApp("points", extra_settings)
    extra = app.settings.extra
    domain = build(app.db, extra["cjk_font"], extra["public_app_url"], extra["pii_vault"])
    ensure_indexes(app.db, domain.directory)
    app.add_grpc(points_pb2_grpc.add_PointsServiceServicer_to_server,
                 PointsServicer(domain.ledger, domain.rules, domain.store, domain.boards, domain.certificates,
                                domain.exports, domain.grading, domain.commendations, domain.monthly,
                                domain.perks),
                 SERVICE_NAME, public_methods=PUBLIC_METHODS)
    for model in (Account, Redemption, Certificate, GradeEvidence, GradeAssessment, Commendation, Merchant,
                  PerkRulesDocument):
        app.add_outbox(model.collection())
    app.add_outbox(StoreItem._get_collection())  # donated stock (StockDonated)
    app.add_event_consumer("registry", [events_topic("registration")], domain.directory.handlers())
    app.add_event_consumer("facts", [events_topic("ordering")], domain.facts.handlers())
    # a group of its own: added to a running deployment, it replays both topics from the start
    app.add_event_consumer("grading", [events_topic("registration"), events_topic("ordering")],
                           domain.grading_facts.handlers())
    ledger_topics = [events_topic("ordering"), events_topic("training")]
    app.add_consumer(lambda dlq: LedgerConsumer(
        domain.ledger, domain.rules, bootstrap_servers=app.settings.kafka_bootstrap_servers,
        group_id=extra["ledger_group"], topics=ledger_topics,
        dlq_producer=dlq, max_records=extra["ledger_batch_records"]), ledger_topics)
    # every process serving calls holds the lease the postings it starts are stamped with
    app.add_background(domain.ledger.owners, every_process=True)
    # a pass every few seconds, from start: what a killed process left half-done is ended within
    # seconds of its lease running out; the job's own lease short for the same reason when the
    # killed process held it
    recovery_interval = extra["recovery_interval_seconds"]
    app.add_job("points-recovery", lambda: domain.recover(extra["recovery_after_seconds"]), recovery_interval,
                lease_seconds=3 * recovery_interval)
    interval = extra["job_interval_seconds"]
    app.add_job("points-holds", domain.store.drop_stale_holds, interval)
    app.add_job("points-expiry", domain.ledger.expire_due, interval)
    app.add_job("points-balance-totals", publish_balance_totals, interval)
    # exports page by page, and their files deleted when they expire (services/common/exports.py)
    for name, work, interval in exports.scheduled(domain.exports):
        app.add_job(name, work, interval)
    # after a personal-data key rotation, merchants' contact numbers are re-encrypted
    rotation = PiiRotation(extra["pii_vault"], app.db["pii_rotation"], [
        Target(Merchant.collection(), [Sealed("contact_phone_enc", MERCHANT_PHONE_FIELD)])])
    app.add_job("pii-rotation", rotation.run, pii_rotation.INTERVAL_SECONDS)
    app.add_blueprint(blueprint(domain.certificates))
    app.run()


if __name__ == "__main__":
    main()
