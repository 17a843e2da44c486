"""Topics are created with explicit settings from one place (kafka_clients.TopicSettings), checked
on the real broker with KafkaAdminClient.describe_configs; a topic keeping records for less time
than configured is reported, without failing readiness."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from kafka.admin import ConfigResource, ConfigResourceType

from services.common.audit import AUDIT
from services.common.events import dlq_topic, events_topic
from services.common.kafka_clients import DAY_MS, TopicSettings, make_admin, retention_weaker

TOPIC = events_topic("registration")


@pytest.fixture
def admin(stack):
    client = make_admin(stack.kafka, "test-topics")
    yield client
    client.close()


def configs_of(admin, topic: str) -> dict[str, str]:
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
    return {key: entry["value"] for key, entry in described["topic"][topic].items()}


def test_a_service_creates_its_topics_as_configured(admin, registration):
    settings = TopicSettings()  # what `make test` runs the services with
    deadline = time.monotonic() + 30  # created once the broker answered, beside SERVING
    while not {TOPIC, dlq_topic(TOPIC)} <= set(admin.list_topics()) and time.monotonic() < deadline:
        time.sleep(0.3)
    for topic in (TOPIC, dlq_topic(TOPIC)):
        found = configs_of(admin, topic)
        assert {key: found[key] for key in settings.configs(topic)} == settings.configs(topic)
        (description,) = admin.describe_topics([topic])
        assert len(description["partitions"]) == settings.partitions
    assert configs_of(admin, TOPIC)["retention.ms"] == "-1"  # the stream is kept forever
    assert configs_of(admin, dlq_topic(TOPIC))["retention.ms"] == str(30 * DAY_MS)


def test_retention_comparison():
    assert retention_weaker(7 * DAY_MS, -1) and retention_weaker(7 * DAY_MS, 30 * DAY_MS)
    assert not retention_weaker(-1, 30 * DAY_MS) and not retention_weaker(-1, -1)
    assert not retention_weaker(30 * DAY_MS, 30 * DAY_MS) and not retention_weaker(60 * DAY_MS, 30 * DAY_MS)


def test_weaker_retention_is_reported_without_failing_readiness(spawn, registration):
    # configured to keep dead letters 60 days: the existing 30-day DLQ is weaker, the stream is not
    proc = spawn("registration", port_offset=2, log_name="registration-retention",
                 extra_env={"KAFKA_DLQ_RETENTION_MS": str(60 * DAY_MS)})
    proc.wait_serving(60)
    deadline = time.monotonic() + 30
    while True:
        with urllib.request.urlopen(f"{proc.http_base}/readyz", timeout=5) as reply:
            status, body = reply.status, json.loads(reply.read())
        if body["warnings"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200 and body["ready"] is True
    # registration's stream and the audit record's (it creates both): each one's dead letters
    assert sorted(body["warnings"]["kafka_topics"]) == sorted(
        f"{dlq_topic(topic)} keeps records {30 * DAY_MS} ms (30 days), configured {60 * DAY_MS} ms (60 days)"
        for topic in (TOPIC, AUDIT.topic))
    with urllib.request.urlopen(f"{proc.http_base}/metrics", timeout=5) as reply:
        metrics = reply.read().decode()
    assert f'kafka_topic_retention_weaker{{topic="{dlq_topic(TOPIC)}"}} 1.0' in metrics
    assert f'kafka_topic_retention_weaker{{topic="{TOPIC}"}} 0.0' in metrics
    assert "Kafka topic retention weaker than configured" in proc.log_path.read_text()
