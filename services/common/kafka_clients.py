"""Kafka clients configured the one way every service uses them, and the one definition of how
a topic is configured (TopicSettings)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import TopicAlreadyExistsError
from prometheus_client import Gauge

log = logging.getLogger(__name__)

DAY_MS = 24 * 3600 * 1000
FOREVER = -1

RETENTION_WEAKER = Gauge("kafka_topic_retention_weaker", "1 when an existing topic keeps its records for less time "
                         "than this service is configured for (KAFKA_EVENTS_RETENTION_MS / KAFKA_DLQ_RETENTION_MS)",
                         ["topic"])


@dataclass(frozen=True)
class TopicSettings:
    """How a service creates its topics: an event stream is the history every read model is
    rebuilt from, so it is kept forever by default; dead letters are kept 30 days, long enough to
    inspect and replay them. The defaults suit one local broker; production values (6 partitions,
    3 replicas, min.insync.replicas 2) come from the chart and match infra/k8s/kafka-topics.yaml."""

    partitions: int = 6
    replication_factor: int = 1
    min_insync_replicas: int = 1
    events_retention_ms: int = FOREVER
    dlq_retention_ms: int = 30 * DAY_MS

    def retention_ms(self, topic: str) -> int:
        return self.dlq_retention_ms if topic.endswith(".dlq") else self.events_retention_ms

    def configs(self, topic: str) -> dict[str, str]:
        """The topic-level configs of `topic` (an events stream, or a DLQ named <stream>.dlq)."""
        return {"cleanup.policy": "delete", "retention.ms": str(self.retention_ms(topic)),
                "min.insync.replicas": str(self.min_insync_replicas)}


def retention_weaker(found_ms: int, wanted_ms: int) -> bool:
    """Whether a topic keeping records `found_ms` keeps them for less than `wanted_ms` (-1: forever)."""
    if found_ms == FOREVER:
        return False
    return wanted_ms == FOREVER or found_ms < wanted_ms


def describe_retention(admin: KafkaAdminClient, topics: list[str]) -> dict[str, int]:
    """retention.ms of each topic as the broker applies it (the topic's own or the broker default)."""
    if not topics:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, t, ["retention.ms"]) for t in topics]
    described = admin.describe_configs(resources, config_filter="all").get("topic", {})
    # a topic the broker does not describe yet (created a moment ago) is left out
    return {t: int(configs["retention.ms"]["value"]) for t, configs in described.items() if "retention.ms" in configs}


# TLS and SASL settings every Kafka client of this process uses (config.kafka_connection); empty
# for a plaintext broker
_connection: dict[str, object] = {}


def configure_connection(options: dict[str, object]) -> None:
    _connection.clear()
    _connection.update(options)


def connection_options() -> dict[str, object]:
    """The security options (security_protocol, ssl_*, sasl_*) to pass to any Kafka client."""
    return dict(_connection)


def consumer_options() -> dict[str, object]:
    """What every consumer of the services is built with."""
    # fetch_max_wait_ms stays at its 500 ms: at 5 s, idle consumers cost less, but after the broker
    # was frozen and thawed a consumer sometimes never fetched again (tests/kit/test_producer_healing.py)
    return dict(request_timeout_ms=30_000, **connection_options())


def make_producer(bootstrap_servers: str, client_id: str, **overrides: Any) -> KafkaProducer:
    """Idempotent producer waiting for all in-sync replicas: a send that reports success is durable."""
    config = dict(
        bootstrap_servers=bootstrap_servers.split(","),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        retries=2**31 - 1,  # bounded by delivery_timeout_ms
        delivery_timeout_ms=30_000,
        request_timeout_ms=10_000,
        max_block_ms=10_000,
        max_in_flight_requests_per_connection=5,
        **_connection,
    )
    config.update(overrides)
    return KafkaProducer(**config)


def make_admin(bootstrap_servers: str, client_id: str) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=bootstrap_servers.split(","), client_id=client_id, request_timeout_ms=5000, **_connection
    )


def ensure_topics(admin: KafkaAdminClient, topics: list[str], settings: TopicSettings) -> list[str]:
    """Creates the missing topics as `settings` say. Existing ones are left as they are (the
    operator's KafkaTopic resources own them in production), but one that keeps its records for
    less time than configured is returned as a warning, logged and counted in
    kafka_topic_retention_weaker."""
    existing = set(admin.list_topics())
    missing = [t for t in topics if t not in existing]
    if missing:
        try:
            admin.create_topics({t: {"num_partitions": settings.partitions,
                                     "replication_factor": settings.replication_factor,
                                     "configs": settings.configs(t)} for t in missing}, timeout_ms=10_000)
            log.info("created topics", extra={"topics": missing})
        except TopicAlreadyExistsError:  # another replica created it in between
            pass
    warnings = []
    # the topics created just now carry the settings; those found already there are checked
    found_retention = describe_retention(admin, [t for t in topics if t in existing])
    for topic in topics:
        found, wanted = found_retention.get(topic, FOREVER), settings.retention_ms(topic)
        weaker = topic in found_retention and retention_weaker(found, wanted)
        RETENTION_WEAKER.labels(topic).set(1 if weaker else 0)
        if weaker:
            warnings.append(f"{topic} keeps records {_span(found)}, configured {_span(wanted)}")
    for warning in warnings:
        log.warning("Kafka topic retention weaker than configured: %s", warning)
    return warnings


def _span(retention_ms: int) -> str:
    return "forever" if retention_ms == FOREVER else f"{retention_ms} ms ({retention_ms / DAY_MS:g} days)"
