"""python -m services.registration: the registration gRPC server (+ ops HTTP)."""

from services.common.events import events_topic
from services.common.listing import IndexFollower
from services.common.runtime import ServiceApp
from wenming.registration.v1 import registration_pb2_grpc

from .app import build, ensure_indexes, extra_settings
from .migrations import migrate, upgrade
from .models import AGGREGATES
from .sessions import Sessions
from .servicer import PUBLIC_METHODS, SERVICE_NAME, RegistrationServicer

PURGE_INTERVAL_SECONDS = 3600


def main() -> None:
    app = ServiceApp("registration", extra_settings)
    ensure_indexes()
    domain = build(app.settings)
    if not app.is_worker:  # once per pod
        migrate(domain)
        domain.units.resume_interrupted_moves()
    app.add_cache(domain.units.cache)
    servicer = RegistrationServicer(domain.units, domain.volunteers, domain.teams, domain.residents, domain.accounts)
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
    app.run()


if __name__ == "__main__":
    main()
