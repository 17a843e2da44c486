"""Media's Prometheus metrics, on top of the kit's RPC, outbox and consumer metrics."""

from __future__ import annotations

import logging

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from wenming.media.v1 import media_pb2 as pb

log = logging.getLogger(__name__)

BYTES_STORED = Counter("media_bytes_stored_total", "Bytes written to storage (deduplicated uploads add none)",
                       ["kind"])
BYTES_SERVED = Counter("media_bytes_served_total", "Bytes of asset content sent to clients", ["channel", "variant"])
UPLOADS = Counter("media_uploads_total", "Uploads that became assets", ["kind", "result"])
UPLOADS_REFUSED = Counter("media_uploads_refused_total", "Uploads refused, by reason", ["reason"])
SCREENING_HITS = Counter("media_sensitive_word_hits_total", "Submitted articles with sensitive words", ["mode"])
HTTP_REQUESTS = Counter("media_http_requests_total", "Requests to the media HTTP API", ["route", "status"])


def kind_label(kind: int) -> str:
    return pb.AssetKind.Name(kind).removeprefix("ASSET_KIND_").lower()


class ReviewQueueCollector:
    """media_review_queue_length{district_id}: articles waiting for review, counted at scrape time
    (every replica reports the same number; take the max)."""

    def __init__(self, articles: Collection):
        self._articles = articles

    def describe(self):
        yield GaugeMetricFamily("media_review_queue_length", "Articles waiting for review", labels=["district_id"])

    def collect(self):
        family = GaugeMetricFamily("media_review_queue_length", "Articles waiting for review", labels=["district_id"])
        try:
            for row in self._articles.aggregate([
                {"$match": {"status": pb.ARTICLE_STATUS_PENDING_REVIEW}},
                {"$group": {"_id": "$district_id", "n": {"$sum": 1}}},
            ]):
                family.add_metric([row["_id"]], row["n"])
        except PyMongoError:
            log.warning("review queue length unavailable: database not reachable")
        yield family
