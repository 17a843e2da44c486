"""Wires one service process together: settings, logs, MongoDB, Kafka topics, outbox relay,
consumers, gRPC (API + health + reflection), the Flask ops app, and graceful shutdown.

A service's `__main__` builds its domain objects and servicer, then:

    app = ServiceApp("registration")
    app.add_grpc(add_RegistrationServiceServicer_to_server, servicer, "wenming.registration.v1.RegistrationService",
                 public_methods=[...])
    app.add_outbox(db.volunteers)
    app.run()        # blocks until SIGTERM/SIGINT
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable

from flask import Blueprint
from pymongo.collection import Collection

from . import mongo
from .audit import AUDIT_TOPIC, CallPolicy
from .auth import TokenVerifier
from .config import ConfigError, Settings, load_settings
from .consumer import EventConsumer
from .events import dlq_topic, events_topic
from .grpc_server import GrpcServer
from .kafka_clients import configure_connection, ensure_topics, make_admin, make_producer
from .logs import configure_logging
from .ops_app import HttpServer, create_ops_app
from .outbox import OUTBOX_INDEX, OutboxRelay, init_metrics
from .revocations import RevocationFeed, RevokedSessions
from .scheduler import LeasedJob

log = logging.getLogger(__name__)


def stop_on_signals(stopping: threading.Event) -> None:
    """SIGTERM (Kubernetes) and SIGINT (Ctrl-C) start a graceful shutdown."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())


class ServiceApp:
    def __init__(self, name: str, extra_settings: Callable | None = None):
        try:
            self.settings: Settings = load_settings(name, extra=extra_settings)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            sys.exit(2)
        configure_logging(name, self.settings.log_level, self.settings.access_log)
        self.name = name
        self.topic = events_topic(name)
        configure_connection(self.settings.kafka_connection)
        self.db = mongo.connect(self.settings.mongodb_uri, self.settings.mongodb_database, name,
                                tls=self.settings.mongodb_tls)
        # ended sessions' tokens are refused: registration's SessionRevoked events feed the set
        self.revoked_sessions = RevokedSessions()
        self.verifier = TokenVerifier(self.settings.jwt_public_key_pem, revoked_sessions=self.revoked_sessions)
        self._revocations = RevocationFeed(self.settings.kafka_bootstrap_servers, self.revoked_sessions)
        self._grpc_services: list[tuple] = []
        self._public_methods: set[str] = set()
        self.grpc: GrpcServer | None = None
        self._relay: OutboxRelay | None = None
        self._producer = None
        self._outbox_collections: list[Collection] = []
        self._consumer_factories: list[Callable[[object], EventConsumer]] = []
        self._consumed_topics: set[str] = set()
        self._consumers: list[EventConsumer] = []
        self._blueprints: list[Blueprint] = []
        self._background: list[threading.Thread] = []
        self._shutdown_hooks: list[Callable[[], None]] = []
        self._checks = {"mongodb": False, "kafka": False, "token_revocations": False}
        self._warnings: dict[str, list[str]] = {}
        self._stopping = threading.Event()
        # admins' state-changing calls are recorded in the service's own audit collection (audit.py)
        self.calls = CallPolicy(name, self.db["audit"])
        self.add_outbox(self.db["audit"])
        self._background.append(self._revocations)

    # ---- composition ----

    def add_grpc(self, add_to_server, servicer, full_service_name: str, public_methods: Iterable[str] = ()) -> None:
        self._grpc_services.append((add_to_server, servicer, full_service_name))
        self._public_methods.update(f"/{full_service_name}/{m}" for m in public_methods)

    def add_outbox(self, collection: Collection) -> None:
        """Registers an aggregate collection whose in-document outbox the relay publishes."""
        collection.create_index(OUTBOX_INDEX)
        self._outbox_collections.append(collection)

    def add_consumer(self, factory: Callable[[object], EventConsumer], topics: list[str]) -> None:
        """`factory(dlq_producer)` builds the consumer (of `topics`) once Kafka is reachable."""
        self._consumer_factories.append(factory)
        self._consumed_topics.update(topics)

    def add_event_consumer(self, name: str, topics: list[str], handlers: dict) -> None:
        """An EventConsumer in consumer group `<service>-<name>` with per-type handlers."""
        self.add_consumer(lambda dlq: EventConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers, group_id=f"{self.name}-{name}",
            topics=topics, handlers=handlers, dlq_producer=dlq), topics)

    def add_job(self, name: str, work: Callable[[], int], interval_seconds: float) -> LeasedJob:
        """A periodic job run by one replica at a time (lease in this service's database)."""
        job = LeasedJob(name, self.db["job_leases"], work, interval_seconds)
        self._background.append(job)
        return job

    def add_blueprint(self, blueprint: Blueprint) -> None:
        self._blueprints.append(blueprint)

    def add_background(self, thread: threading.Thread) -> None:
        """A thread with start() and stop(timeout) (schedulers and the like)."""
        self._background.append(thread)

    def on_shutdown(self, hook: Callable[[], None]) -> None:
        """`hook()` runs as soon as shutdown begins, before in-flight calls are awaited: it ends
        long-lived server streams, which would otherwise hold the whole grace period."""
        self._shutdown_hooks.append(hook)

    # ---- running ----

    def readiness(self) -> dict[str, bool]:
        return dict(self._checks)

    def warnings(self) -> dict[str, list[str]]:
        """What is wrong but does not stop the service from serving (shown by /readyz)."""
        return dict(self._warnings)

    def _monitor(self) -> None:
        """Keeps the health status honest: SERVING only while MongoDB and Kafka answer."""
        admin = None
        while not self._stopping.is_set():
            self._checks["mongodb"] = mongo.ping(self.db)
            try:
                admin = admin or make_admin(self.settings.kafka_bootstrap_servers, f"{self.name}-health")
                self._checks["kafka"] = bool(admin.describe_cluster().get("brokers"))
            except Exception:  # any failure means "not reachable now"
                self._checks["kafka"] = False
                if admin is not None:
                    admin.close()
                admin = None
            self._checks["token_revocations"] = self._revocations.ready
            if not self._stopping.is_set():
                self.grpc.set_serving(all(self._checks.values()))
            self._stopping.wait(2.0)
        if admin is not None:
            admin.close()

    def _start_kafka_side(self) -> None:
        """Topics, relay and consumers; retried until the broker answers, so a service started
        before Kafka still comes up (NOT_SERVING meanwhile)."""
        delay = 1.0
        while not self._stopping.is_set():
            try:
                admin = make_admin(self.settings.kafka_bootstrap_servers, f"{self.name}-setup")
                try:
                    # its own topic, and those it consumes (a peer may start later): all with the
                    # configured partitions, and each with the DLQ its poison goes to
                    topics = sorted({self.topic, AUDIT_TOPIC, *self._consumed_topics})
                    weaker = ensure_topics(admin, topics + [dlq_topic(t) for t in topics], self.settings.kafka_topics)
                    if weaker:
                        self._warnings["kafka_topics"] = weaker
                finally:
                    admin.close()
                producer = make_producer(self.settings.kafka_bootstrap_servers, f"{self.name}-relay")
                break
            except Exception as exc:
                log.warning("Kafka not reachable yet (%s); retrying in %.0fs", exc, delay)
                self._stopping.wait(delay)
                delay = min(10.0, delay * 2)
        else:
            return
        self._producer = producer
        init_metrics(self.topic)
        self._relay = OutboxRelay(producer, self._outbox_collections, poll_seconds=self.settings.outbox_poll_seconds)
        self._relay.start()
        for factory in self._consumer_factories:
            consumer = factory(producer)
            consumer.start()
            self._consumers.append(consumer)

    def run(self) -> None:
        stop_on_signals(self._stopping)
        app = create_ops_app(self.name, self.readiness, self.warnings)
        for blueprint in self._blueprints:
            app.register_blueprint(blueprint)
        http = HttpServer(app, self.settings.http_port)
        self.grpc = GrpcServer(port=self.settings.grpc_port, verifier=self.verifier,
                               workers=self.settings.grpc_workers, public_methods=self._public_methods,
                               calls=self.calls, tls=self.settings.grpc_tls)
        for add_to_server, servicer, full_name in self._grpc_services:
            self.grpc.add(add_to_server, servicer, full_name)
        self.grpc.start()
        http.start()
        setup = threading.Thread(target=self._start_kafka_side, name="kafka-setup", daemon=True)
        setup.start()
        monitor = threading.Thread(target=self._monitor, name="health-monitor", daemon=True)
        monitor.start()
        for thread in self._background:
            thread.start()
        log.info("serving", extra={"grpc_port": self.settings.grpc_port, "http_port": self.settings.http_port})

        self._stopping.wait()
        log.info("shutting down: health NOT_SERVING, finishing in-flight calls")
        for hook in self._shutdown_hooks:
            hook()
        self.grpc.stop(self.settings.shutdown_grace_seconds)
        for thread in self._background:
            thread.stop()
        setup.join(5)
        for consumer in self._consumers:
            consumer.stop()
        if self._relay is not None:
            self._relay.stop()
            self._producer.close(timeout=5)
        http.stop()
        monitor.join(3)
        log.info("stopped")
