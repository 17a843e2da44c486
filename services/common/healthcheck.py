"""Checks that services answer healthy; the chart's `helm test` hook runs it in the service image.

    python -m services.common.healthcheck [--timeout 5] \\
        grpc:wenming-ordering.wenming.svc.cluster.local:50051 \\
        http://wenming-gateway.wenming.svc.cluster.local:8080/readyz

Targets:
  grpc:HOST:PORT  grpc.health.v1 Check of the overall server (service ""): healthy when SERVING
  http:URL        GET of an http(s) URL (the URL itself, or `http:` written before it): healthy
                  on a 2xx answer — /readyz answers 503 while MongoDB or Kafka is away

With GRPC_TLS_* in the environment (services/common/config.py), gRPC targets are checked over TLS
(mTLS when a certificate is given). Every call has a deadline (--timeout seconds). One line per target is printed; the exit code is
0 when every target is healthy and 1 otherwise (also for arguments that cannot be checked).
Proxy variables are ignored: the targets are cluster-internal.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import NoReturn

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .config import Env, GrpcTls, grpc_tls
from .grpc_client import channel_credentials

SERVING = health_pb2.HealthCheckResponse.SERVING


@dataclass(frozen=True)
class Target:
    kind: str  # "grpc" or "http"
    address: str  # host:port or URL

    def __str__(self) -> str:
        return f"{self.kind} {self.address}"


def parse_target(text: str) -> Target:
    kind, sep, rest = text.partition(":")
    if sep and kind == "grpc":
        host, colon, port = rest.rpartition(":")
        if not (colon and host and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"{text!r}: expected grpc:HOST:PORT")
        return Target("grpc", rest)
    if sep and kind in ("http", "https"):
        # http://host/path is both the URL and an http: target; http:https://host/path also works
        url = rest if rest.startswith(("http://", "https://")) else text
        if not url.startswith(("http://", "https://")) or len(url.split("/", 3)[2]) == 0:
            raise ValueError(f"{text!r}: expected an http(s) URL such as http://HOST:PORT/readyz")
        return Target("http", url)
    raise ValueError(f"{text!r}: a target is grpc:HOST:PORT or an http(s) URL")


def check_grpc(address: str, timeout: float, tls: GrpcTls | None = None) -> tuple[bool, str]:
    options: list[tuple[str, int | str]] = [("grpc.enable_http_proxy", 0)]
    if tls is not None and tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    opened = grpc.insecure_channel(address, options=options) if tls is None else \
        grpc.secure_channel(address, channel_credentials(tls), options=options)
    with opened as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""),
                                                                 timeout=timeout)
        except grpc.RpcError as error:
            return False, f"{error.code().name}: {error.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    return response.status == SERVING, status


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def check_http(url: str, timeout: float) -> tuple[bool, str]:
    try:
        with _OPENER.open(urllib.request.Request(url, headers={"Accept": "application/json"}), timeout=timeout) as answer:
            return True, f"HTTP {answer.status}"
    except urllib.error.HTTPError as error:
        return False, f"HTTP {error.code}{_not_ready(error)}"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return False, f"unreachable: {reason}"


def _not_ready(error: urllib.error.HTTPError) -> str:
    """The checks /readyz reports as failing, when the body says so."""
    try:
        checks = json.loads(error.read(4096)).get("checks") or {}
    except (ValueError, AttributeError, OSError):
        return ""
    failing = sorted(name for name, ok in checks.items() if not ok)
    return f", not ready: {', '.join(failing)}" if failing else ""


def check(target: Target, timeout: float, tls: GrpcTls | None = None) -> tuple[bool, str]:
    return check_grpc(target.address, timeout, tls) if target.kind == "grpc" else check_http(target.address, timeout)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors fail the check too: exit 1, not argparse's 2
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m services.common.healthcheck",
                     description="Exit 0 when every target is healthy, 1 otherwise.")
    parser.add_argument("--timeout", type=float, default=5.0, help="deadline of each call in seconds (default 5)")
    parser.add_argument("targets", nargs="+", metavar="TARGET", help="grpc:HOST:PORT or an http(s) URL")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be above 0")
    try:
        targets = [parse_target(t) for t in args.targets]
    except ValueError as error:
        parser.error(str(error))
    env = Env()
    tls = grpc_tls(env)
    if env.problems:
        parser.error("; ".join(env.problems))
    healthy = True
    for target in targets:
        ok, detail = check(target, args.timeout, tls)
        healthy &= ok
        print(f"{'ok  ' if ok else 'FAIL'} {target}: {detail}", flush=True)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
