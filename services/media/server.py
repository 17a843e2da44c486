"""Wires the media process together: gRPC API, HTTP API, outboxes, consumers, the orphan job."""

import logging

from prometheus_client import REGISTRY

from services.common.events import events_topic
from services.common.runtime import ServiceApp
from wenming.media.v1 import media_pb2_grpc

from .app import build, extra_settings
from .http_api import create_blueprint
from .metrics import ReviewQueueCollector
from .models import AGGREGATES, Article
from .servicer import SERVICE_NAME, MediaServicer

log = logging.getLogger(__name__)


def main(allocator_tuned: bool) -> None:
    app = ServiceApp("media", extra_settings)
    if not allocator_tuned:
        log.info("no glibc here: large transfers use the allocator's defaults")
    media = build(app.settings, app.db)
    media.ensure_indexes()
    app.add_grpc(media_pb2_grpc.add_MediaServiceServicer_to_server, MediaServicer(media), SERVICE_NAME)
    app.add_cache(media.screening.cache)
    for model in AGGREGATES:
        app.add_outbox(model.collection())
    app.add_event_consumer("registration", [events_topic("registration")], media.registry.handlers())
    app.add_event_consumer("ordering", [events_topic("ordering")],
                           media.work.handlers(media.assets.link_completion_photos))
    # 表彰 an honour roll entry may name (honor_rolls.py)
    app.add_event_consumer("points", [events_topic("points")], media.commendations.handlers())
    app.add_job("blob-orphans", media.blobs.remove_orphans, app.settings.extra["cleanup_interval_seconds"])
    app.add_blueprint(create_blueprint(media, app.verifier, app.calls))
    REGISTRY.register(ReviewQueueCollector(Article.collection()))
    app.run()
