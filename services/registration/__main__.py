"""python -m services.registration: the registration gRPC server (+ ops HTTP)."""

from services.common.events import events_topic
from services.common.listing import IndexFollower
from services.common import exports, pii_rotation
from services.common.audit import AUDIT
from services.common.runtime import ServiceApp
from wenming.registration.v1 import registration_pb2_grpc

from . import audit, import_jobs
from .app import build, ensure_indexes, extra_settings
from .migrations import migrate, upgrade
from .models import AGGREGATES, personal_data
from .sessions import Sessions
from .servicer import PUBLIC_METHODS, SERVICE_NAME, RegistrationServicer

PURGE_INTERVAL_SECONDS = 3600


def main() -> None:
    app = ServiceApp("registration", extra_settings)
    ensure_indexes()
    domain = build(app.settings, app.verifier)
    if not app.is_worker:  # once per pod
        migrate(domain)
        domain.units.resume_interrupted_moves()
    app.add_cache(domain.units.cache)
    servicer = RegistrationServicer(domain.units, domain.volunteers, domain.teams, domain.residents, domain.accounts,
                                    domain.audit, domain.imports, domain.venues, domain.bookings, domain.exports,
                                    domain.households)
    app.add_grpc(registration_pb2_grpc.add_RegistrationServiceServicer_to_server, servicer, SERVICE_NAME,
                 public_methods=PUBLIC_METHODS)
    for model in AGGREGATES:
        app.add_outbox(model.collection())
    app.add_job("purge-expired-sessions", Sessions.purge_expired, PURGE_INTERVAL_SECONDS)
    # from registration's own events: a volunteer's search entries left behind by a process that
    # died after the volunteer's write, and units and residents written by a previous release
    own = [events_topic("registration")]

    def repair(aggregate_type: str, versions: dict[str, int]) -> int:
        return domain.volunteers.repair(aggregate_type, versions) + upgrade(aggregate_type, versions)

    app.add_consumer(lambda dlq: IndexFollower(
        bootstrap_servers=app.settings.kafka_bootstrap_servers, group_id="registration-index", topics=own,
        dlq_producer=dlq, repair=repair, aggregate_types=("volunteer", "unit", "resident")), own)
    app.add_job("purge-login-failures", domain.accounts.throttle.purge, PURGE_INTERVAL_SECONDS)
    # spreadsheet imports, chunk by chunk; a job left by a stopped replica is resumed where it was
    app.add_job(import_jobs.JOB_NAME, domain.imports.run_pass, import_jobs.INTERVAL_SECONDS)
    # exports page by page, and their files deleted when they expire (services/common/exports.py)
    for name, work, interval in exports.scheduled(domain.exports):
        app.add_job(name, work, interval)
    # after a personal-data key rotation, everything is re-encrypted and re-indexed in the background
    rotation = pii_rotation.PiiRotation(app.settings.extra["pii_vault"], app.db["pii_rotation"], personal_data())
    app.add_job("pii-rotation", rotation.run, pii_rotation.INTERVAL_SECONDS)
    # every service's admin actions (services/common/audit.py), kept for the district's inspectors
    app.add_event_consumer("audit", [AUDIT.topic], {audit.RECORDED_TYPE: audit.store})
    app.run()


if __name__ == "__main__":
    main()
