"""Kafka clients configured the one way every service uses them."""

from __future__ import annotations

import logging

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)


def make_producer(bootstrap_servers: str, client_id: str, **overrides) -> KafkaProducer:
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
    )
    config.update(overrides)
    return KafkaProducer(**config)


def make_admin(bootstrap_servers: str, client_id: str) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=bootstrap_servers.split(","), client_id=client_id, request_timeout_ms=5000
    )


def ensure_topics(admin: KafkaAdminClient, topics: list[str], partitions: int, replication_factor: int) -> None:
    """Creates the topics that do not exist yet; existing ones are left as they are."""
    existing = set(admin.list_topics())
    missing = [t for t in topics if t not in existing]
    if not missing:
        return
    new = [NewTopic(name=t, num_partitions=partitions, replication_factor=replication_factor) for t in missing]
    try:
        admin.create_topics(new, timeout_ms=10_000)
    except TopicAlreadyExistsError:  # another replica created it in between
        pass
    log.info("created topics", extra={"topics": missing})
