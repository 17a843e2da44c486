"""services.common.healthcheck, the checker the chart's `helm test` Pod runs: targets, deadlines,
one line per target and the exit code, against a gRPC health server and an HTTP server started
in-process on the loopback interface."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.common.healthcheck import Target, main, parse_target


@pytest.mark.parametrize(("text", "expected"), [
    ("grpc:wenming-ordering.wenming.svc.cluster.local:50051", Target("grpc", "wenming-ordering.wenming.svc.cluster.local:50051")),
    ("grpc:[::1]:50051", Target("grpc", "[::1]:50051")),
    ("http://wenming-gateway:8080/readyz", Target("http", "http://wenming-gateway:8080/readyz")),
    ("http:http://wenming-gateway:8080/readyz", Target("http", "http://wenming-gateway:8080/readyz")),
    ("https://wenming.example.gov.cn/readyz", Target("http", "https://wenming.example.gov.cn/readyz")),
])
def test_targets(text, expected):
    assert parse_target(text) == expected


@pytest.mark.parametrize("text", [
    "ordering:50051", "grpc:ordering", "grpc::50051", "grpc:ordering:grpc", "grpc:ordering:70000",
    "http:ordering:8080", "http://", "ftp://example/readyz", "tcp:ordering:50051",
])
def test_malformed_targets_are_refused(text):
    with pytest.raises(ValueError, match="target|expected"):
        parse_target(text)


@pytest.mark.parametrize("argv", [[], ["ordering:50051"], ["--timeout=0", "grpc:localhost:50051"],
                                  ["--timeout=soon", "grpc:localhost:50051"]])
def test_bad_arguments_exit_1(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 1
    assert "error:" in capsys.readouterr().err


class _SlowHealth(health.HealthServicer):
    def Check(self, request, context):
        time.sleep(2)
        return super().Check(request, context)


@pytest.fixture
def grpc_health():
    """Starts gRPC servers with grpc.health.v1: start(servicer=None) -> (target, servicer)."""
    servers = []

    def start(servicer=None):
        servicer = servicer or health.HealthServicer()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}", servicer

    yield start
    for server in servers:
        server.stop(0)


class _Readyz(BaseHTTPRequestHandler):
    def do_GET(self):
        ready = self.path == "/readyz"
        body = json.dumps({"ready": ready, "checks": {"kafka": ready, "mongodb": True}}).encode()
        self.send_response(200 if ready else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_base():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Readyz)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_all_serving_exits_0_with_one_line_per_target(grpc_health, http_base, capsys):
    first, one = grpc_health()
    second, other = grpc_health()
    for servicer in (one, other):
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert main([f"grpc:{first}", f"grpc:{second}", f"{http_base}/readyz"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"ok   grpc {first}: SERVING", f"ok   grpc {second}: SERVING", f"ok   http {http_base}/readyz: HTTP 200"]


def test_one_not_serving_fails_the_check(grpc_health, http_base, capsys):
    serving, one = grpc_health()
    one.set("", health_pb2.HealthCheckResponse.SERVING)
    not_serving, other = grpc_health()
    other.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert main([f"grpc:{serving}", f"grpc:{not_serving}", f"http:{http_base}/readyz"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ok ") and lines[2].startswith("ok ")
    assert lines[1] == f"FAIL grpc {not_serving}: NOT_SERVING"


def test_http_not_ready_names_the_failing_checks(http_base, capsys):
    assert main([f"{http_base}/not-ready"]) == 1
    assert capsys.readouterr().out.strip() == f"FAIL http {http_base}/not-ready: HTTP 503, not ready: kafka"


def test_unreachable_targets_fail(capsys):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    assert main(["--timeout=2", f"grpc:127.0.0.1:{port}", f"http://127.0.0.1:{port}/readyz"]) == 1
    assert time.monotonic() - started < 5
    grpc_line, http_line = capsys.readouterr().out.splitlines()
    assert grpc_line.startswith(f"FAIL grpc 127.0.0.1:{port}: ") and ("UNAVAILABLE" in grpc_line or "DEADLINE_EXCEEDED" in grpc_line)
    assert http_line.startswith(f"FAIL http http://127.0.0.1:{port}/readyz: unreachable")


def test_a_call_that_hangs_hits_its_deadline(grpc_health, capsys):
    slow_target, slow = grpc_health(_SlowHealth())
    slow.set("", health_pb2.HealthCheckResponse.SERVING)
    started = time.monotonic()
    assert main(["--timeout=0.3", f"grpc:{slow_target}"]) == 1
    assert time.monotonic() - started < 1.5
    assert capsys.readouterr().out.strip().startswith(f"FAIL grpc {slow_target}: DEADLINE_EXCEEDED")
