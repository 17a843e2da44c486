"""python -m services.training: the training gRPC server (+ ops HTTP), its consumers and jobs."""

from services.common.events import events_topic
from services.common.readmodels import RegistrationReadModels
from services.common.runtime import ServiceApp
from wenming.training.v1 import training_pb2_grpc

from .app import build, ensure_indexes, extra_settings
from .models import AGGREGATES
from .servicer import SERVICE_NAME, TrainingServicer


def main() -> None:
    app = ServiceApp("training", extra_settings)
    registry = RegistrationReadModels(app.db)
    ensure_indexes(registry)
    domain = build(app.settings, registry)
    app.add_grpc(training_pb2_grpc.add_TrainingServiceServicer_to_server, TrainingServicer(domain), SERVICE_NAME)
    app.add_cache(domain.rotation.policies)
    for model in AGGREGATES:
        app.add_outbox(model.collection())
    # units, volunteers and teams from registration; completions (records, certifications) from our own events
    app.add_event_consumer("registration", [events_topic("registration")], registry.handlers())
    app.add_event_consumer("completions", [app.topic], domain.records.handlers())
    extra = app.settings.extra
    app.add_job("close-sessions", domain.sessions.close_due, extra["close_sessions_interval_seconds"])
    app.add_job("expire-certifications", domain.certifications.expire_due,
                extra["expire_certifications_interval_seconds"])
    app.add_job("rotation-metrics", domain.rotation.publish_metrics, extra["rotation_metrics_interval_seconds"])
    app.run()


if __name__ == "__main__":
    main()
