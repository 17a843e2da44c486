"""Wires one service process together: settings, logs, MongoDB, Kafka topics, outbox relay,
consumers, gRPC (API + health + reflection), the Flask ops app, and graceful shutdown.

A service's `__main__` builds its domain objects and servicer, then:

    app = ServiceApp("registration")
    app.add_grpc(add_RegistrationServiceServicer_to_server, servicer, "wenming.registration.v1.RegistrationService",
                 public_methods=[...])
    app.add_outbox(db.volunteers)
    app.run()        # blocks until SIGTERM/SIGINT

One Python process serves gRPC on one core at most (the GIL). With GRPC_PROCESSES=n the process
(the pod's main one) starts n-1 worker processes running the same `__main__`: all n serve gRPC
on one port (SO_REUSEPORT: the kernel spreads the connections), while the outbox relay,
consumers, jobs, background threads and the HTTP ops app run in the main process only, once per
pod. /metrics adds the workers' metrics to the main process's (ops_app.PodMetrics). SIGTERM to
the main process drains every process: each turns NOT_SERVING and finishes its in-flight calls.
A worker that dies is started again; a worker whose main process is gone stops.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import grpc
from flask import Blueprint
from prometheus_client import multiprocess
from pymongo.collection import Collection

from . import mongo
from .audit import AUDIT, CallPolicy
from .auth import TokenVerifier
from .cache import ChangeListener, ReadCache
from .config import ConfigError, Env, Settings, load_settings
from .consumer import EventConsumer, Handler
from .events import dlq_topic, events_topic, set_kafka_prefix
from .grpc_server import GrpcServer
from .kafka_clients import configure_connection, ensure_topics, make_admin, make_producer
from .logs import configure_logging
from .mongo import RawDoc
from .ops_app import HttpServer, PodMetrics, create_ops_app
from .outbox import OUTBOX_INDEX, OutboxRelay, init_metrics
from .producers import HealingProducer
from .retry import OUTAGE
from .revocations import RevocationFeed, RevokedSessions
from .scheduler import LeasedJob
from .threads import Stoppable, stop_together

log = logging.getLogger(__name__)

# set in the environment of the gRPC worker processes the main process starts
WORKER_ENV = "WENMING_GRPC_WORKER"
# prometheus_client's multiprocess mode: read when it is imported, so set before a worker starts
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Background(Stoppable, Protocol):
    """What runs beside the calls (jobs, listeners, feeds): started with the app, stopped with it."""

    def start(self) -> None: ...


def stop_on_signals(stopping: threading.Event) -> None:
    """SIGTERM (Kubernetes) and SIGINT (Ctrl-C) start a graceful shutdown."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())


class ServiceApp:
    def __init__(self, name: str, extra_settings: Callable[[Env], dict[str, Any]] | None = None):
        try:
            self.settings: Settings = load_settings(name, extra=extra_settings)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            sys.exit(2)
        configure_logging(name, self.settings.log_level, self.settings.access_log)
        set_kafka_prefix(self.settings.kafka_prefix)
        self.name = name
        self.topic = events_topic(name)
        configure_connection(self.settings.kafka_connection)
        self.db = mongo.connect(self.settings.mongodb_uri, self.settings.mongodb_database, name,
                                tls=self.settings.mongodb_tls)
        # ended sessions' tokens are refused: registration's SessionRevoked events feed the set
        self.revoked_sessions = RevokedSessions()
        self.verifier = TokenVerifier(self.settings.jwt_public_key_pem, revoked_sessions=self.revoked_sessions)
        self._revocations = RevocationFeed(self.settings.kafka_bootstrap_servers, self.revoked_sessions)
        self._grpc_services: list[tuple[Callable[[Any, grpc.Server], None], object, str]] = []
        self._public_methods: set[str] = set()
        self._relay: OutboxRelay | None = None
        self._producer: HealingProducer | None = None
        self._outbox_collections: list[Collection[RawDoc]] = []
        self._consumer_factories: list[Callable[[HealingProducer], EventConsumer]] = []
        self._consumed_topics: set[str] = set()
        self._consumers: list[EventConsumer] = []
        self._blueprints: list[Blueprint] = []
        self._background: list[Background] = []
        self._process_background: list[Background] = []
        self._caches: list[ReadCache[Any]] = []
        self._shutdown_hooks: list[Callable[[], None]] = []
        # outbox_relay and consumers: failing once one stalls (_check_progress)
        self._checks = {"mongodb": False, "kafka": False, "token_revocations": False,
                        "outbox_relay": True, "consumers": True}
        self._warnings: dict[str, list[str]] = {}
        self._reasons: dict[str, str] = {}
        self._stopping = threading.Event()
        # admins' state-changing calls are recorded in the service's own audit collection (audit.py)
        self.calls = CallPolicy(name, self.db["audit"])
        self.add_outbox(self.db["audit"])
        # every process that serves calls refuses ended sessions (GRPC_PROCESSES)
        self._process_background.append(self._revocations)

    # ---- composition ----

    def add_grpc(self, add_to_server: Callable[[Any, grpc.Server], None], servicer: object, full_service_name: str,
                 public_methods: Iterable[str] = ()) -> None:
        self._grpc_services.append((add_to_server, servicer, full_service_name))
        self._public_methods.update(f"/{full_service_name}/{m}" for m in public_methods)

    def add_outbox(self, collection: Collection[RawDoc]) -> None:
        """Registers an aggregate collection whose in-document outbox the relay publishes."""
        collection.create_index(OUTBOX_INDEX)
        self._outbox_collections.append(collection)

    def add_consumer(self, factory: Callable[[HealingProducer], EventConsumer], topics: list[str]) -> None:
        """`factory(dlq_producer)` builds the consumer (of `topics`) once Kafka is reachable."""
        self._consumer_factories.append(factory)
        self._consumed_topics.update(topics)

    def add_event_consumer(self, name: str, topics: list[str], handlers: dict[str, Handler]) -> None:
        """An EventConsumer in consumer group `<service>-<name>` with per-type handlers."""
        self.add_consumer(lambda dlq: EventConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers, group_id=f"{self.name}-{name}",
            topics=topics, handlers=handlers, dlq_producer=dlq), topics)

    def add_job(self, name: str, work: Callable[[], int], interval_seconds: float,
                lease_seconds: float = 30.0) -> LeasedJob:
        """A periodic job run by one replica at a time (lease in this service's database; a
        replica that dies holding it keeps the job idle until the lease runs out)."""
        job = LeasedJob(name, self.db["job_leases"], work, interval_seconds, lease_seconds)
        self._background.append(job)
        return job

    def add_blueprint(self, blueprint: Blueprint) -> None:
        self._blueprints.append(blueprint)

    def add_background(self, thread: Background, every_process: bool = False) -> None:
        """A thread with start() and stop(timeout) (schedulers and the like), run once per pod;
        `every_process`: in each process that serves gRPC (what serves that process's own calls,
        e.g. the listener that wakes its live streams)."""
        (self._process_background if every_process else self._background).append(thread)

    def add_cache(self, cache: ReadCache[Any]) -> None:
        """A cache whose copies the service's own events drop (cache.py): every process that
        serves calls reads its topic for them."""
        if not self._caches:
            self.add_background(ChangeListener(self.settings.kafka_bootstrap_servers, self.topic, self._caches),
                                every_process=True)
        self._caches.append(cache)

    def on_shutdown(self, hook: Callable[[], None]) -> None:
        """`hook()` runs as soon as shutdown begins, before in-flight calls are awaited: it ends
        long-lived server streams, which would otherwise hold the whole grace period."""
        self._shutdown_hooks.append(hook)

    # ---- running ----

    def readiness(self) -> dict[str, bool]:
        return dict(self._checks)

    def not_ready_reasons(self) -> dict[str, str]:
        """Why a check fails, where more can be said than its name (shown by /readyz)."""
        return dict(self._reasons)

    def _check_progress(self) -> None:
        """A relay with events pending, or a consumer behind, that has not moved for
        READINESS_STALL_SECONDS is not ready: the broker may answer, yet nothing gets through."""
        bound = self.settings.stall_seconds
        reasons = {}
        if self._relay is not None and (stalled := self._relay.stalled_for()) > bound:
            reasons["outbox_relay"] = f"events pending, none published for {stalled:.0f}s"
        stalled_groups = [f"{c.group_id} made no progress for {c.stalled_for():.0f}s with records to read"
                          for c in self._consumers if c.stalled_for() > bound]
        if stalled_groups:
            reasons["consumers"] = "; ".join(stalled_groups)
        self._checks["outbox_relay"] = "outbox_relay" not in reasons
        self._checks["consumers"] = "consumers" not in reasons
        self._reasons = reasons

    def warnings(self) -> dict[str, list[str]]:
        """What is wrong but does not stop the service from serving (shown by /readyz)."""
        return dict(self._warnings)

    @property
    def is_worker(self) -> bool:
        """A gRPC worker process started by the pod's main process (GRPC_PROCESSES > 1)."""
        return bool(os.environ.get(WORKER_ENV))

    def _monitor(self, grpc_server: GrpcServer) -> None:
        """Keeps the health status honest: SERVING only while MongoDB and Kafka answer. In a
        worker, also notices that the main process is gone (then the worker stops)."""
        admin = None
        started = False
        parent = os.getppid()
        while not self._stopping.is_set():
            if self.is_worker and os.getppid() != parent:
                log.warning("the pod's main process is gone; stopping this gRPC worker")
                self._stopping.set()
                break
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
            if not self.is_worker:
                self._check_progress()
            serving = all(self._checks.values())
            if not self._stopping.is_set():
                grpc_server.set_serving(serving)
            started = started or serving
            # until it first serves, look again soon: a start (or a restart in a rollout) should not
            # wait a whole period for the revocation feed to catch up
            self._stopping.wait(2.0 if started else 0.1)
        if admin is not None:
            admin.close()

    def _start_kafka_side(self) -> None:
        """Topics, relay and consumers; retried until the broker answers, so a service started
        before Kafka still comes up (NOT_SERVING meanwhile)."""
        failures = 0
        while not self._stopping.is_set():
            try:
                admin = make_admin(self.settings.kafka_bootstrap_servers, f"{self.name}-setup")
                try:
                    # its own topic, and those it consumes (a peer may start later): all with the
                    # configured partitions, and each with the DLQ its poison goes to
                    topics = sorted({self.topic, AUDIT.topic, *self._consumed_topics})
                    weaker = ensure_topics(admin, topics + [dlq_topic(t) for t in topics], self.settings.kafka_topics)
                    if weaker:
                        self._warnings["kafka_topics"] = weaker
                finally:
                    admin.close()
                producer = HealingProducer(lambda: make_producer(self.settings.kafka_bootstrap_servers,
                                                                 f"{self.name}-relay"))
                break
            except Exception as exc:
                failures += 1
                pause = OUTAGE.delay(failures)
                log.warning("Kafka not reachable yet (%s); retrying in %.1fs", exc, pause)
                self._stopping.wait(pause)
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
        workers = None
        if self.is_worker:
            grpc_server = self._start_grpc(reuse_port=True)
        elif self.settings.grpc_processes > 1:
            free_or_exit(self.settings.grpc_port)
            grpc_server = self._start_grpc(reuse_port=True)
            workers = GrpcWorkers(self.settings.grpc_processes - 1, self._stopping)
            workers.start()
        else:
            grpc_server = self._start_grpc(reuse_port=False)
        monitor = threading.Thread(target=self._monitor, args=(grpc_server,), name="health-monitor", daemon=True)
        monitor.start()
        for thread in self._process_background:
            thread.start()
        if self.is_worker:
            log.info("serving", extra={"grpc_port": self.settings.grpc_port, "grpc_worker": os.getpid()})
            self._stopping.wait()
            self._stop_grpc(grpc_server)
        else:
            self._run_main(grpc_server, workers)
        stop_together(self._process_background)
        monitor.join(3)
        log.info("stopped")
        # everything of ours is closed; pymongo's exit hook would still wait out its monitors'
        # half-second sleeps, which every restart of a rollout pays
        logging.shutdown()
        os._exit(0)

    def _start_grpc(self, reuse_port: bool) -> GrpcServer:
        server = GrpcServer(port=self.settings.grpc_port, verifier=self.verifier,
                            workers=self.settings.grpc_workers, public_methods=self._public_methods,
                            calls=self.calls, tls=self.settings.grpc_tls, reuse_port=reuse_port)
        for add_to_server, servicer, full_name in self._grpc_services:
            server.add(add_to_server, servicer, full_name)
        server.start()
        return server

    def _stop_grpc(self, grpc_server: GrpcServer) -> None:
        log.info("shutting down: health NOT_SERVING, finishing in-flight calls")
        for hook in self._shutdown_hooks:
            hook()
        grpc_server.stop(self.settings.shutdown_grace_seconds)

    def _run_main(self, grpc_server: GrpcServer, workers: GrpcWorkers | None) -> None:
        """The pod's main process: gRPC, and everything that runs once per pod."""
        app = create_ops_app(self.name, self.readiness, self.warnings, self.not_ready_reasons,
                             **({"exposed": PodMetrics(workers.metrics_dir)} if workers else {}))
        for blueprint in self._blueprints:
            app.register_blueprint(blueprint)
        http = HttpServer(app, self.settings.http_port)
        http.start()
        setup = threading.Thread(target=self._start_kafka_side, name="kafka-setup", daemon=True)
        setup.start()
        for thread in self._background:
            thread.start()
        log.info("serving", extra={"grpc_port": self.settings.grpc_port, "http_port": self.settings.http_port,
                                   "grpc_processes": self.settings.grpc_processes})

        self._stopping.wait()
        if workers:
            workers.stop_all()  # they drain while this process does
        self._stop_grpc(grpc_server)
        if workers:
            workers.join(self.settings.shutdown_grace_seconds + 5)
        setup.join(5)
        # the relay last: it publishes what the others wrote to the outbox while stopping
        stop_together([*self._background, *self._consumers])
        if self._relay is not None:
            self._relay.stop()
        if self._producer is not None:
            self._producer.close(timeout=5)
        http.stop()


def free_or_exit(port: int) -> None:
    """The workers bind with SO_REUSEPORT, which would share a port held by another process of
    the same user silently: the port must be free before this pod takes it."""
    probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        probe.bind(("::", port))
    except OSError:
        raise RuntimeError(f"cannot listen on gRPC port {port}: it is in use") from None
    finally:
        probe.close()


class GrpcWorkers:
    """The pod's gRPC worker processes: the running service's own `__main__` again, with
    WENMING_GRPC_WORKER set, started again when one dies; their metrics in a directory of their
    own (prometheus_client multiprocess mode)."""

    def __init__(self, count: int, stopping: threading.Event):
        self.count = count
        self._stopping = stopping
        self.metrics_dir = tempfile.mkdtemp(prefix="wenming-grpc-metrics-")
        self._env = {**os.environ, WORKER_ENV: "1", METRICS_DIR_ENV: self.metrics_dir}
        self._command = [sys.executable, *sys.orig_argv[1:]]  # python -m services.<name>, as this one
        self._procs: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        self._watcher = threading.Thread(target=self._watch, name="grpc-workers", daemon=True)

    def start(self) -> None:
        with self._lock:
            self._procs = [self._spawn() for _ in range(self.count)]
        self._watcher.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        # stdout and stderr are this process's: the workers' logs go where the pod's go
        proc = subprocess.Popen(self._command, env=self._env)
        log.info("started gRPC worker", extra={"grpc_worker": proc.pid})
        return proc

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            with self._lock:
                for i, proc in enumerate(self._procs):
                    if proc.poll() is not None and not self._stopping.is_set():
                        log.error("gRPC worker %d exited with %s; starting another", proc.pid, proc.returncode)
                        _forget(proc.pid, self.metrics_dir)
                        self._procs[i] = self._spawn()

    def stop_all(self) -> None:
        with self._lock:
            for proc in self._procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            for proc in self._procs:
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.error("gRPC worker %d did not stop in time; killing it", proc.pid)
                    proc.kill()
                    proc.wait(5)
        shutil.rmtree(self.metrics_dir, ignore_errors=True)


def _forget(pid: int, metrics_dir: str) -> None:
    """A dead worker's live gauges leave the sums (its counters stay: they were counted)."""
    multiprocess.mark_process_dead(pid, metrics_dir)  # type: ignore[no-untyped-call]  # unannotated
