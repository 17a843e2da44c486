"""python -m services.gateway: REST for apps and the app itself (/app/), on HTTP_PORT."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.config import ConfigError, Env, grpc_tls
from services.common.http_errors import register_json_errors
from services.common.logs import configure_logging
from services.common.ops_app import HttpServer, create_ops_app, trace_requests
from services.common.runtime import stop_on_signals
from services.common.threads import StoppableThread

from .api import api_blueprint
from .downloads import downloads_blueprint
from .streams import WAITRESS_ADJUSTMENTS, InboxStreams
from .upstreams import KNOWN_SERVICES, Upstream
from .web import web_blueprint

log = logging.getLogger("services.gateway")
BUILT_APP = Path(__file__).resolve().parents[2] / "build" / "web"


def load_upstreams(env: Env) -> dict[str, Upstream]:
    timeout = env.float("UPSTREAM_TIMEOUT_SECONDS", 3.0)
    # GRPC_TLS_*: the CA the services' certificates are checked against, and the gateway's own
    # certificate for services that demand one (mTLS)
    tls = grpc_tls(env)
    targets = {name: env.str(f"{name.upper()}_GRPC_TARGET", "") for name in KNOWN_SERVICES}
    if not targets["registration"]:
        env.problems.append("REGISTRATION_GRPC_TARGET is required (logins go through it)")
    upstreams = {}
    for name, target in targets.items():
        if target:
            upstreams[name] = Upstream(name, target, timeout, tls)
    return upstreams


class UpstreamHealth(StoppableThread):
    """Ready while every configured upstream reports SERVING (checked every 2 s; until they first
    all do, every 0.1 s, so a start is not held a whole period)."""

    def __init__(self, upstreams: dict[str, Upstream]):
        super().__init__("upstream-health")
        self._upstreams = upstreams
        self.checks = {name: False for name in upstreams}

    def run(self) -> None:
        started = False
        while not self._stopping.is_set():
            for name, upstream in self._upstreams.items():
                try:
                    reply = health_pb2_grpc.HealthStub(upstream.channel).Check(
                        health_pb2.HealthCheckRequest(service=""), timeout=1)
                    self.checks[name] = reply.status == health_pb2.HealthCheckResponse.SERVING
                except grpc.RpcError:
                    self.checks[name] = False
            started = started or all(self.checks.values())
            self._stopping.wait(2.0 if started else 0.1)


def main() -> int:
    env = Env()
    port = env.int("HTTP_PORT", 8080, minimum=1)
    level = env.str("LOG_LEVEL", "INFO").upper()
    access_log = env.bool("ACCESS_LOG", False)
    web_root = Path(env.str("WEB_ROOT", str(BUILT_APP)))
    # the district this deployment serves, offered on the login page (empty: people type its code)
    district_id = env.str("APP_DISTRICT_ID", "")
    district_name = env.str("APP_DISTRICT_NAME", "")
    # waitress threads: HTTP_THREADS for REST calls, and SSE_MAX_STREAMS more, one per open stream
    rest_threads = env.int("HTTP_THREADS", 16, minimum=1)
    sse_streams = env.int("SSE_MAX_STREAMS", 32, minimum=0)
    sse_max_seconds = env.float("SSE_MAX_SECONDS", 24 * 3600.0)
    # proxies of the deployment in front of the gateway (an ingress: 1): the client's address is the
    # X-Forwarded-For entry that many from the right (entries left of it are whatever the client sent)
    trusted_proxy_hops = env.int("TRUSTED_PROXY_HOPS", 0, minimum=0)
    proxies: dict[str, Any] = {"trusted_proxy": "*", "trusted_proxy_count": trusted_proxy_hops,
               "trusted_proxy_headers": "x-forwarded-for"} if trusted_proxy_hops else {}
    upstreams = load_upstreams(env)
    try:
        env.check("gateway")
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging("gateway", level, access_log)
    health = UpstreamHealth(upstreams)
    app = create_ops_app("gateway", lambda: dict(health.checks))
    register_json_errors(app)
    trace_requests(app)
    app.register_blueprint(api_blueprint(upstreams))
    app.register_blueprint(downloads_blueprint(upstreams))
    app.register_blueprint(web_blueprint(web_root, district_id, district_name, region_reports="rollup" in upstreams))
    streams = InboxStreams(upstreams.get("notification"), sse_streams, sse_max_seconds)
    app.register_blueprint(streams.blueprint())
    # open streams are connections on top of waitress's usual limit (100)
    server = HttpServer(app, port, threads=rest_threads + sse_streams, connection_limit=100 + sse_streams,
                        **WAITRESS_ADJUSTMENTS, **proxies)
    stopping = threading.Event()
    stop_on_signals(stopping)
    health.start()
    server.start()
    log.info("serving", extra={"http_port": port, "upstreams": {n: u.target for n, u in upstreams.items()}})
    stopping.wait()
    health.request_stop()
    streams.close()
    server.stop()
    for upstream in upstreams.values():
        upstream.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
