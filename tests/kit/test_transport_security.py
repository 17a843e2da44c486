"""Transport security as an option, with certificates made here: a service with server TLS
refuses a plaintext client and serves a TLS one; with mTLS it refuses a client without a
certificate (or with one its CA did not sign), and the gateway reaches it with its own. A service
also works over a Kafka SSL listener and a FerretDB TLS listener started here beside the test
stack (ports of the slot's spare range)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.errors import KafkaError
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from services.common.events import events_topic
from tests.support.certs import Authority
from tests.support.kafka_broker import PrivateKafka, running_command, wait_port
from tests.support.registration import District
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import registration_pb2 as reg
from wenming.registration.v1 import registration_pb2_grpc as reg_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NAME = (("grpc.ssl_target_name_override", "localhost"),)


def _health(channel: grpc.Channel) -> int:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status


def _tls(target: str, ca, client=None) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(), private_key=client.key.read_bytes() if client else None,
        certificate_chain=client.cert.read_bytes() if client else None)
    return grpc.secure_channel(target, credentials, options=NAME)


def _tls_env(server, ca, client_auth: bool) -> dict[str, str]:
    return {"GRPC_TLS_CERT_FILE": str(server.cert), "GRPC_TLS_KEY_FILE": str(server.key),
            "GRPC_TLS_CA_FILE": str(ca), "GRPC_TLS_SERVER_NAME": "localhost",
            "GRPC_TLS_CLIENT_AUTH": "true" if client_auth else "false"}


@pytest.fixture
def authority(tmp_path) -> Authority:
    return Authority(tmp_path / "pki")


def test_server_tls_refuses_plaintext_and_serves_tls(spawn, authority):
    server = authority.issue("registration")
    proc = spawn("registration", port_offset=1, log_name="registration-tls",
                 extra_env=_tls_env(server, authority.cert, client_auth=False))
    proc.wait_serving(90)  # asked over TLS, as the launcher reads the service's own settings
    with grpc.insecure_channel(proc.grpc_target) as plain, pytest.raises(grpc.RpcError) as refused:
        _health(plain)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    with _tls(proc.grpc_target, authority.cert) as channel:  # no client certificate needed
        assert _health(channel) == SERVING
        with pytest.raises(grpc.RpcError) as answered:  # a real call goes through the interceptor
            reg_grpc.RegistrationServiceStub(channel).VerifyToken(reg.VerifyTokenRequest(access_token="x.y.z"),
                                                                  timeout=5)
        assert answered.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # a client that does not trust the service's CA refuses it
    with _tls(proc.grpc_target, Authority(authority.directory / "other", "other-ca").cert) as channel, \
            pytest.raises(grpc.RpcError) as untrusted:
        _health(channel)
    assert untrusted.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_refuses_clients_without_a_certificate_of_its_ca(spawn, authority):
    server = authority.issue("registration")
    proc = spawn("registration", port_offset=1, log_name="registration-mtls",
                 extra_env=_tls_env(server, authority.cert, client_auth=True))
    proc.wait_serving(90)
    stranger = Authority(authority.directory / "other", "other-ca").issue("stranger")
    for client in (None, stranger):
        with _tls(proc.grpc_target, authority.cert, client) as channel, pytest.raises(grpc.RpcError) as refused:
            _health(channel)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, client
    gateway_cert = authority.issue("gateway")
    with _tls(proc.grpc_target, authority.cert, gateway_cert) as channel:
        assert _health(channel) == SERVING

    # the gateway with its own certificate reaches it; REST calls go through
    others = {f"{name}_GRPC_TARGET": "" for name in ("ORDERING", "POINTS", "TRAINING", "MEDIA", "NOTIFICATION")}
    gateway = spawn("gateway", port_offset=1, log_name="gateway-mtls", extra_env={
        "REGISTRATION_GRPC_TARGET": proc.grpc_target, **others,
        **_tls_env(gateway_cert, authority.cert, client_auth=False)})
    gateway.wait_serving(60)
    request = urllib.request.Request(f"{gateway.http_base}/api/v1/registration/VerifyToken",
                                     data=json.dumps({"accessToken": "x.y.z"}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=10)
    assert answer.value.code == 401 and json.loads(answer.value.read())["error"]["status"] == "UNAUTHENTICATED"


@contextlib.contextmanager
def _tls_ferretdb(stack, authority, port: int, work: Path):
    server = authority.issue("ferretdb")
    binary = running_command(stack.data_dir, "ferretdb")[0]
    log = work / "ferretdb-tls.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([binary, "--listen-tls", f"127.0.0.1:{port}", "--tls-cert-file", str(server.cert),
                                    "--tls-key-file", str(server.key), "--data-dir", str(work / "ferretdb")],
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_port(port, process, log)
        yield f"mongodb://localhost:{port}/"
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def _ssl_kafka(stack, authority, port: int, work: Path):
    server = authority.issue("kafka")
    keystore = work / "kafka-keystore.pem"
    keystore.write_bytes(server.key.read_bytes() + server.cert.read_bytes())
    kafka = PrivateKafka(stack, port, work / "kafka", listener="SSL", extra=(
        "ssl.keystore.type=PEM", f"ssl.keystore.location={keystore}",
        "ssl.truststore.type=PEM", f"ssl.truststore.location={authority.cert}"),
        client_options={"security_protocol": "SSL", "ssl_cafile": str(authority.cert)})
    kafka.start()
    try:
        yield kafka.address
    finally:
        kafka.stop()


def test_a_service_over_kafka_ssl_and_mongodb_tls(stack, spawn, authority, tmp_path):
    """Both of a service's connections encrypted: it serves, bootstraps a district and publishes
    its events; a plaintext Kafka client gets nothing from the broker."""
    kafka_port, mongo_port = int(os.environ["KAFKA_PORT"]) + 7, int(os.environ["MONGO_PORT"]) + 7
    with _ssl_kafka(stack, authority, kafka_port, tmp_path) as kafka, \
            _tls_ferretdb(stack, authority, mongo_port, tmp_path) as mongodb_uri:
        proc = spawn("registration", port_offset=1, log_name="registration-kafka-mongo-tls", extra_env={
            "KAFKA_BOOTSTRAP_SERVERS": kafka, "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CA_FILE": str(authority.cert), "MONGODB_URI": mongodb_uri,
            "MONGODB_TLS_CA_FILE": str(authority.cert)})
        proc.wait_serving(120)
        district = District(proc.grpc_target, proc.env)
        try:
            district.unit(district.center_id, "加密实践所", c.UNIT_LEVEL_INSTITUTE)
        finally:
            district.close()
        topic = events_topic("registration")
        consumer = KafkaConsumer(bootstrap_servers=[kafka], security_protocol="SSL", ssl_cafile=str(authority.cert),
                                 group_id=None, auto_offset_reset="earliest", consumer_timeout_ms=15_000)
        try:
            consumer.subscribe([topic])
            types = {dict(r.headers)["event_type"].decode() for r in consumer
                     if dict(r.headers).get("district_id", b"").decode() == district.id}
        finally:
            consumer.close()
        assert {"wenming.registration.v1.UnitCreated", "wenming.registration.v1.AdminAccountCreated"} <= types
        with pytest.raises(KafkaError):  # the SSL listener speaks no plaintext
            KafkaAdminClient(bootstrap_servers=[kafka], request_timeout_ms=3000, api_version_auto_timeout_ms=3000)
        with MongoClient(mongodb_uri, serverSelectionTimeoutMS=3000) as plain, pytest.raises(PyMongoError):
            plain.admin.command("ping")
