"""infra/k8s: Kafka (Strimzi, KRaft) with a topic per stream, the MongoDB replica set, the Secret
examples and the key generator, checked against the chart and the services' code."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from services.common.auth import Principal, Role, TokenIssuer, TokenVerifier
from services.common.config import Env, pii_vault
from services.common.events import dlq_topic, events_topic
from tests.support.stack import KAFKA_PREFIX
from services.common.kafka_clients import FOREVER, TopicSettings
from tests.charts.helm import CHART_DIR, ROOT, matches, validate

K8S = ROOT / "infra" / "k8s"
CHART_VALUES = yaml.safe_load((CHART_DIR / "values.yaml").read_text(encoding="utf-8"))
SERVICES_WITH_EVENTS = ("registration", "ordering", "points", "training", "media", "notification")
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def load(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")) if d]


def chart_pod_labels(service: str) -> dict:
    """The labels the chart puts on a service's pods (release "wenming")."""
    return {"app.kubernetes.io/name": "wenming", "app.kubernetes.io/instance": "wenming",
            "app.kubernetes.io/part-of": "wenming", "app.kubernetes.io/component": service}


@pytest.mark.parametrize("name", ["kafka.yaml", "kafka-topics.yaml", "mongodb.yaml", "secrets.example.yaml"])
def test_examples_validate(name):
    validate((K8S / name).read_text(encoding="utf-8"))


def test_kafka_runs_kraft_node_pools_behind_the_chart_bootstrap_address():
    docs = load("kafka.yaml")
    (kafka,) = [d for d in docs if d["kind"] == "Kafka"]
    pools = [d for d in docs if d["kind"] == "KafkaNodePool"]
    assert {d["apiVersion"] for d in docs} == {"kafka.strimzi.io/v1"}
    assert "zookeeper" not in kafka["spec"]
    cluster, namespace = kafka["metadata"]["name"], kafka["metadata"]["namespace"]
    assert all(p["metadata"]["labels"]["strimzi.io/cluster"] == cluster for p in pools)
    roles = [set(p["spec"]["roles"]) for p in pools]
    assert {"controller"} in roles and {"broker"} in roles
    controllers = sum(p["spec"]["replicas"] for p in pools if "controller" in p["spec"]["roles"])
    brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])
    assert controllers % 2 == 1 and controllers >= 3, "a KRaft quorum needs an odd number of controllers"
    config = kafka["spec"]["kafka"]["config"]
    # acks=all writes survive one broker down
    assert brokers >= config["default.replication.factor"] > config["min.insync.replicas"] >= 2
    assert CHART_VALUES["kafka"]["replicationFactor"] == config["default.replication.factor"]
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    # Strimzi names the bootstrap Service <cluster>-kafka-bootstrap
    assert CHART_VALUES["kafka"]["bootstrapServers"] == f"{cluster}-kafka-bootstrap.{namespace}.svc:{listener['port']}"
    (peer,) = listener["networkPolicyPeers"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "wenming"}
    assert all(matches(peer["podSelector"], chart_pod_labels(s)) for s in SERVICES_WITH_EVENTS)
    egress = CHART_VALUES["serviceDefaults"]["networkPolicy"]["kafkaEgress"]
    assert listener["port"] in egress["ports"]
    assert egress["to"][0]["podSelector"]["matchLabels"] == {"strimzi.io/cluster": cluster}
    assert egress["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": namespace}


def test_one_topic_per_stream_and_its_dead_letters():
    topics = load("kafka-topics.yaml")
    (kafka,) = [d for d in load("kafka.yaml") if d["kind"] == "Kafka"]
    # every service's stream and the audit record's (services/common/audit.py), as a release
    # installed without a Kafka prefix names them (the test process runs with one of its own)
    unprefixed = [events_topic(s).removeprefix(KAFKA_PREFIX) for s in (*SERVICES_WITH_EVENTS, "audit")]
    expected = {t for topic in unprefixed for t in (topic, dlq_topic(topic))}
    kafka_values = CHART_VALUES["kafka"]
    settings = TopicSettings(partitions=kafka_values["topicPartitions"],
                             replication_factor=kafka_values["replicationFactor"],
                             min_insync_replicas=kafka_values["minInsyncReplicas"],
                             events_retention_ms=kafka_values["eventsRetentionMs"],
                             dlq_retention_ms=kafka_values["dlqRetentionMs"])
    assert sorted(t["spec"]["topicName"] for t in topics) == sorted(expected)
    for topic in topics:
        assert topic["kind"] == "KafkaTopic" and topic["apiVersion"] == "kafka.strimzi.io/v1"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        assert topic["metadata"]["namespace"] == kafka["metadata"]["namespace"]
        assert DNS_1123.match(topic["metadata"]["name"])
        spec = topic["spec"]
        # exactly what a service would create with the chart's production values (TopicSettings)
        assert spec["partitions"] == settings.partitions
        assert spec["replicas"] == settings.replication_factor
        assert {k: str(v) for k, v in spec["config"].items()} == settings.configs(spec["topicName"])
    # read models are rebuilt from the first offset: the streams themselves are never cut
    assert settings.events_retention_ms == FOREVER and settings.min_insync_replicas == 2


def test_mongodb_replica_set_user_reaches_each_service_database():
    docs = load("mongodb.yaml")
    (mongo,) = [d for d in docs if d["kind"] == "MongoDBCommunity"]
    spec = mongo["spec"]
    assert spec["type"] == "ReplicaSet" and spec["members"] >= 3 and spec["members"] % 2 == 1
    assert spec["security"]["authentication"]["modes"] == ["SCRAM"]
    (user,) = spec["users"]
    prefix = CHART_VALUES["mongodb"]["databasePrefix"]
    databases = {f"{prefix}{s}" for s, v in CHART_VALUES["services"].items()
                 if v.get("usesMongodb", CHART_VALUES["serviceDefaults"]["usesMongodb"])}
    assert {(r["name"], r["db"]) for r in user["roles"]} == {("readWrite", db) for db in databases}
    password = next(d for d in docs if d["kind"] == "Secret")
    assert password["metadata"]["name"] == user["passwordSecretRef"]["name"]
    # the operator labels the members app=<name>-svc; the chart's egress rule selects them by it
    egress = CHART_VALUES["serviceDefaults"]["networkPolicy"]["mongodbEgress"]
    assert egress["to"][0]["podSelector"]["matchLabels"] == {"app": f"{mongo['metadata']['name']}-svc"}
    assert egress["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": mongo["metadata"]["namespace"]}


def test_example_secrets_have_the_keys_the_chart_mounts():
    secrets = {d["metadata"]["name"]: d for d in load("secrets.example.yaml")}
    keys = {v.lower().replace("_", "-") for s in CHART_VALUES["services"].values() for v in s.get("secretEnv", [])}
    assert set(secrets[CHART_VALUES["secrets"]["existingSecret"]]["stringData"]) == keys
    uri = secrets["wenming-mongodb-uri"]["stringData"]["mongodb-uri"]
    # no database in the path (it would override MONGODB_DATABASE), the user's auth database named
    assert re.match(r"^mongodb://[^/]+/\?", uri) and "authSource=admin" in uri and "replicaSet=" in uri
    for values_file in ("values-district-example.yaml", "values-dev.yaml"):
        values = yaml.safe_load((CHART_DIR / values_file).read_text(encoding="utf-8"))
        assert values["mongodb"]["existingSecret"] in secrets, values_file
        assert values["secrets"]["existingSecret"] in secrets, values_file
    example = yaml.safe_load((CHART_DIR / "values-district-example.yaml").read_text(encoding="utf-8"))
    (district,) = example["bootstrap"]["districts"]
    assert district["adminPasswordSecret"]["key"] in secrets[district["adminPasswordSecret"]["name"]]["stringData"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    keys = tmp_path_factory.mktemp("keys") / "wenming-keys"
    subprocess.run(["bash", str(K8S / "generate-secrets.sh"), str(keys), "liangzhou"], check=True,
                   capture_output=True, text=True, timeout=60)
    return keys


def test_generated_keys_are_what_the_services_accept(generated):
    (secret,) = [d for d in yaml.safe_load_all((generated / "wenming-secrets.yaml").read_text()) if d]
    validate(yaml.safe_dump(secret))
    assert secret["metadata"]["namespace"] == "liangzhou"
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    env = Env({name.upper().replace("-", "_"): value for name, value in data.items()})
    vault, checkin = pii_vault(env), env.key_bytes("CHECKIN_CODE_KEY")
    assert env.problems == [] and vault.encryption.label == vault.blind.label == "v1"
    assert len({vault.encryption.keys[1], vault.blind.keys[1], checkin}) == 3
    token, _ = TokenIssuer(data["jwt-private-key"]).issue(Principal(subject="acc_1", district_id="liangzhou", role=Role.ROLE_RESIDENT))
    principal, _ = TokenVerifier(data["jwt-public-key"]).verify(token)
    assert (principal.subject, principal.district_id) == ("acc_1", "liangzhou")


def test_generator_never_overwrites_keys(generated):
    before = (generated / "pii-encryption-keys").read_bytes()
    result = subprocess.run(["bash", str(K8S / "generate-secrets.sh"), str(generated)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0 and "refusing to overwrite keys" in result.stderr
    assert (generated / "pii-encryption-keys").read_bytes() == before
