"""Settings from the environment, failing fast and naming every missing variable at once."""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping

from .kafka_clients import FOREVER, TopicSettings


class ConfigError(RuntimeError):
    """Raised at start-up when the environment cannot configure the service."""


class Env:
    """Reads typed values from a mapping, collecting problems instead of stopping at the first."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self._environ = os.environ if environ is None else environ
        self.problems: list[str] = []

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            # NAME_FILE points at a mounted Secret file (Kubernetes style)
            path = self._environ.get(f"{name}_FILE")
            if path:
                try:
                    return Path(path).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    self.problems.append(f"{name}_FILE={path}: cannot read ({exc.strerror})")
                    return None
            return None
        return value.strip()

    def str(self, name: str, default: str | None = None) -> str:
        value = self._raw(name)
        if value is None:
            if default is None:
                self.problems.append(f"{name} is required")
                return ""
            return default
        return value

    def int(self, name: str, default: int | None = None, minimum: int | None = None) -> int:
        raw = self._raw(name)
        if raw is None:
            if default is None:
                self.problems.append(f"{name} is required")
                return 0
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not a whole number")
            return 0
        if minimum is not None and value < minimum:
            self.problems.append(f"{name}={value} must be at least {minimum}")
        return value

    def float(self, name: str, default: float) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not a number")
            return default

    def bool(self, name: str, default: bool) -> bool:
        raw = self._raw(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name}={raw!r} is not a boolean (true/false)")
        return default

    def key_bytes(self, name: str, length: int = 32) -> bytes:
        """A base64-encoded secret key of exactly `length` bytes (required)."""
        raw = self.str(name)
        if not raw:
            return b""
        try:
            key = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            self.problems.append(f"{name} is not valid base64")
            return b""
        if len(key) != length:
            self.problems.append(f"{name} must decode to {length} bytes, got {len(key)}")
        return key

    def check(self, service: str) -> None:
        if self.problems:
            raise ConfigError(
                f"{service}: cannot start, fix the environment:\n  - " + "\n  - ".join(self.problems)
            )


@dataclass(frozen=True)
class Settings:
    """What every service process needs. Service-specific values live in `extra`."""

    service_name: str
    grpc_port: int
    http_port: int
    mongodb_uri: str
    mongodb_database: str
    kafka_bootstrap_servers: str
    jwt_public_key_pem: str
    log_level: str = "INFO"
    access_log: bool = False
    grpc_workers: int = 32
    grpc_processes: int = 1
    shutdown_grace_seconds: float = 10.0
    kafka_topics: TopicSettings = field(default_factory=TopicSettings)
    outbox_poll_seconds: float = 0.2
    extra: dict = field(default_factory=dict)


def topic_settings(env: Env) -> TopicSettings:
    """KAFKA_TOPIC_PARTITIONS, KAFKA_REPLICATION_FACTOR, KAFKA_MIN_INSYNC_REPLICAS,
    KAFKA_EVENTS_RETENTION_MS (-1: forever) and KAFKA_DLQ_RETENTION_MS, defaults in TopicSettings."""
    default = TopicSettings()
    settings = TopicSettings(
        partitions=env.int("KAFKA_TOPIC_PARTITIONS", default.partitions, minimum=1),
        replication_factor=env.int("KAFKA_REPLICATION_FACTOR", default.replication_factor, minimum=1),
        min_insync_replicas=env.int("KAFKA_MIN_INSYNC_REPLICAS", default.min_insync_replicas, minimum=1),
        events_retention_ms=env.int("KAFKA_EVENTS_RETENTION_MS", default.events_retention_ms, minimum=FOREVER),
        dlq_retention_ms=env.int("KAFKA_DLQ_RETENTION_MS", default.dlq_retention_ms, minimum=FOREVER),
    )
    if settings.min_insync_replicas > settings.replication_factor:
        env.problems.append(f"KAFKA_MIN_INSYNC_REPLICAS={settings.min_insync_replicas} is above "
                            f"KAFKA_REPLICATION_FACTOR={settings.replication_factor}: no write could succeed")
    return settings


def load_settings(service_name: str, environ: Mapping[str, str] | None = None, extra=None) -> Settings:
    """Builds Settings from the environment; `extra(env)` reads service-specific values.

    Raises ConfigError naming every missing or malformed variable.
    """
    env = Env(environ)
    settings = Settings(
        service_name=service_name,
        grpc_port=env.int("GRPC_PORT", 50051, minimum=1),
        http_port=env.int("HTTP_PORT", 8080, minimum=1),
        mongodb_uri=env.str("MONGODB_URI"),
        mongodb_database=env.str("MONGODB_DATABASE", f"wenming_{service_name}"),
        kafka_bootstrap_servers=env.str("KAFKA_BOOTSTRAP_SERVERS"),
        jwt_public_key_pem=env.str("JWT_PUBLIC_KEY"),
        log_level=env.str("LOG_LEVEL", "INFO").upper(),
        access_log=env.bool("ACCESS_LOG", False),
        grpc_workers=env.int("GRPC_WORKERS", 32, minimum=1),
        grpc_processes=env.int("GRPC_PROCESSES", 1, minimum=1),
        shutdown_grace_seconds=env.float("SHUTDOWN_GRACE_SECONDS", 10.0),
        kafka_topics=topic_settings(env),
        outbox_poll_seconds=env.float("OUTBOX_POLL_SECONDS", 0.2),
        extra=extra(env) if extra else {},
    )
    env.check(service_name)
    return settings
