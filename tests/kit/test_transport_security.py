"""Transport security as an option, with certificates made here: a service with server TLS
refuses a plaintext client and serves a TLS one; with mTLS it refuses a client without a
certificate (or with one its CA did not sign), and the gateway reaches it with its own."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.certs import Authority
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
