"""The Flask ops app every service serves on its HTTP port: /healthz, /readyz, /metrics.

Services add their own REST routes (media downloads, certificate verification) as blueprints.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, disable_created_metrics, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from waitress.server import create_server

from . import tracing
from .logs import access_log


# <name>_created series double every counter and histogram for a timestamp nobody graphs; the
# conventions are in docs/architecture.md (Metrics)
disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated in prometheus_client


def trace_requests(routes: Flask | Blueprint) -> None:
    """Each HTTP request continues the caller's `traceparent` (or starts a trace), answers with
    its own, and with ACCESS_LOG writes one line — as gRPC calls do in the interceptor."""

    @routes.before_request
    def start_trace() -> None:
        g.trace_token = tracing.enter(tracing.continue_from(request.headers.get(tracing.TRACEPARENT)))
        g.trace_started = time.perf_counter()

    @routes.after_request
    def answer_trace(response: Response) -> Response:
        context = tracing.current()
        if context:
            response.headers[tracing.TRACEPARENT] = context.header()
        if not access_log.disabled:
            access_log.info("http", extra={"method": request.method, "path": request.path[:200],
                                           "status": response.status_code,
                                           "ms": round((time.perf_counter() - g.trace_started) * 1000, 1)})
        return response

    @routes.teardown_request
    def end_trace(_error: BaseException | None) -> None:
        token = g.pop("trace_token", None)
        if token is not None:
            tracing.leave(token)


class PodMetrics(Collector):
    """What /metrics shows when a pod serves gRPC from several processes (runtime.ServiceApp,
    GRPC_PROCESSES): this process's own registry (it runs the background work and serves gRPC
    too) plus every worker process's, which prometheus_client's multiprocess mode keeps in files
    under `worker_dir`, summed sample by sample. A counter is then the pod's total, as if one
    process had served every call; a worker that exits keeps its counts in the sums."""

    def __init__(self, worker_dir: str):
        self._workers = MultiProcessCollector(None, path=worker_dir)  # type: ignore[no-untyped-call]  # unannotated

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        samples: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], Sample]] = {}
        workers: Iterator[Metric] = self._workers.collect()  # type: ignore[no-untyped-call]  # unannotated
        for metric in (*REGISTRY.collect(), *workers):
            family = families.setdefault(metric.name, Metric(metric.name, metric.documentation, metric.type,
                                                             metric.unit))
            into = samples.setdefault(metric.name, {})
            for sample in metric.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                known = into.get(key)
                into[key] = sample if known is None else known._replace(value=known.value + sample.value)
        for name, family in families.items():
            family.samples = list(samples[name].values())
            yield family


def create_ops_app(service: str, readiness: Callable[[], dict[str, bool]],
                   warnings: Callable[[], dict[str, list[str]]] = dict,
                   reasons: Callable[[], dict[str, str]] = dict, exposed: Collector = REGISTRY) -> Flask:
    """`readiness()` names the checks that must pass; `warnings()` what /readyz reports without
    failing (e.g. a Kafka topic keeping records for less time than configured); `reasons()` why
    a failing check fails, where more can be said than its name; `exposed` is
    what /metrics shows (a PodMetrics when the pod has gRPC worker processes)."""
    app = Flask(service)
    assert isinstance(app.json, DefaultJSONProvider)  # Flask's own, unless a service replaces it
    app.json.ensure_ascii = False  # Chinese text stays readable in JSON bodies

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", service=service)

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        checks = readiness()
        ready = all(checks.values())
        return jsonify(ready=ready, checks=checks, reasons=reasons(), warnings=warnings(),
                       service=service), 200 if ready else 503

    @app.get("/metrics")
    def metrics() -> Response:
        # content_type, not mimetype: Flask would add a second "; charset=utf-8"
        return Response(generate_latest(exposed), content_type=CONTENT_TYPE_LATEST)

    return app


class HttpServer:
    """Waitress serving a Flask app on its own thread."""

    def __init__(self, app: Flask, port: int, host: str = "0.0.0.0", threads: int = 8, **adjustments: Any):
        """`adjustments` are further waitress settings (connection_limit for many long responses)."""
        try:
            self._server = create_server(app, host=host, port=port, threads=threads, ident=app.name, **adjustments)
        except OSError as exc:
            raise RuntimeError(f"cannot listen on HTTP port {port}: {exc.strerror}") from None
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.close()
