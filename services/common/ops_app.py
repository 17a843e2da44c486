"""The Flask ops app every service serves on its HTTP port: /healthz, /readyz, /metrics.

Services add their own REST routes (media downloads, certificate verification) as blueprints.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from flask import Flask, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, disable_created_metrics, generate_latest
from waitress.server import create_server


# <name>_created series double every counter and histogram for a timestamp nobody graphs; the
# conventions are in docs/architecture.md (Metrics)
disable_created_metrics()


def create_ops_app(service: str, readiness: Callable[[], dict[str, bool]],
                   warnings: Callable[[], dict[str, list[str]]] = dict) -> Flask:
    """`readiness()` names the checks that must pass; `warnings()` what /readyz reports without
    failing (e.g. a Kafka topic keeping records for less time than configured)."""
    app = Flask(service)
    app.json.ensure_ascii = False  # Chinese text stays readable in JSON bodies

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", service=service)

    @app.get("/readyz")
    def readyz():
        checks = readiness()
        ready = all(checks.values())
        return jsonify(ready=ready, checks=checks, warnings=warnings(), service=service), 200 if ready else 503

    @app.get("/metrics")
    def metrics():
        # content_type, not mimetype: Flask would add a second "; charset=utf-8"
        return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)

    return app


class HttpServer:
    """Waitress serving a Flask app on its own thread."""

    def __init__(self, app: Flask, port: int, host: str = "0.0.0.0", threads: int = 8, **adjustments):
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
