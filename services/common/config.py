"""Settings from the environment, failing fast and naming every missing variable at once."""

from __future__ import annotations

import base64
import builtins
import binascii
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Mapping
from typing import Any

from .kafka_clients import FOREVER, TopicSettings
from .pii import Keyring, PiiVault


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

    # below, `str`, `int`, `float` and `bool` in the class are these methods: the types are builtins.*
    def int(self, name: builtins.str, default: builtins.int | None = None, minimum: builtins.int | None = None) -> builtins.int:
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

    def float(self, name: builtins.str, default: builtins.float) -> builtins.float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not a number")
            return default

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        raw = self._raw(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name}={raw!r} is not a boolean (true/false)")
        return default

    def key_bytes(self, name: builtins.str, length: builtins.int = 32) -> bytes:
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

    def check(self, service: builtins.str) -> None:
        if self.problems:
            raise ConfigError(
                f"{service}: cannot start, fix the environment:\n  - " + "\n  - ".join(self.problems)
            )


def kafka_prefix(env: Env) -> str:
    """What goes before topic and group names: characters Kafka allows in a topic name, short
    enough to leave the names room under Kafka's 249."""
    prefix = env.str("KAFKA_PREFIX", "")
    if not re.fullmatch(r"[A-Za-z0-9._-]{0,40}", prefix):
        env.problems.append(f"KAFKA_PREFIX={prefix[:40]!r}: at most 40 of A-Z a-z 0-9 . _ -")
    return prefix


def pii_vault(env: Env) -> PiiVault | None:
    """The personal-data keys: PII_ENCRYPTION_KEYS and PII_BLIND_INDEX_KEYS, keyrings such as
    "v2:<base64>,v1:<base64>" (newest first is customary; the highest version is the newest), or
    the single keys PII_ENCRYPTION_KEY and PII_BLIND_INDEX_KEY of earlier releases as version 1."""
    rings: list[Keyring | None] = []
    for name in ("PII_ENCRYPTION", "PII_BLIND_INDEX"):
        text = env.str(f"{name}_KEYS", "")
        if not text:
            if not env.str(f"{name}_KEY", ""):
                env.problems.append(f"{name}_KEYS is required (or the single {name}_KEY of earlier releases)")
                rings.append(None)
                continue
            key = env.key_bytes(f"{name}_KEY")
            rings.append(Keyring({1: key}) if len(key) == 32 else None)
            continue
        try:
            rings.append(Keyring.parse(text))
        except ValueError as exc:
            env.problems.append(f"{name}_KEYS: {exc}")
            rings.append(None)
    keyrings = [ring for ring in rings if ring is not None]
    if len(keyrings) < len(rings):
        return None
    try:
        return PiiVault(*keyrings)
    except ValueError as exc:
        env.problems.append(str(exc))
        return None


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
    kafka_prefix: str = ""
    grpc_workers: int = 32
    grpc_processes: int = 1
    shutdown_grace_seconds: float = 10.0
    kafka_topics: TopicSettings = field(default_factory=TopicSettings)
    # a write in the relay's own process wakes it at once; the poll only finds what other
    # processes wrote (gRPC worker processes, command-line jobs). Five scans a second of every
    # outbox collection were most of an idle database's work.
    outbox_poll_seconds: float = 1.0
    # a relay with events pending or a consumer behind that has not moved for this long is not ready
    stall_seconds: float = 60.0
    kafka_connection: dict[str, Any] = field(default_factory=dict)  # TLS/SASL options of every Kafka client
    mongodb_tls: dict[str, Any] = field(default_factory=dict)       # TLS options of the MongoDB client
    grpc_tls: GrpcTls | None = None                       # None: plaintext gRPC
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GrpcTls:
    """TLS of the gRPC API (PEM file paths). With `client_auth` the server also demands a client
    certificate signed by `ca_file` (mTLS); callers (the gateway) present `cert_file` as theirs
    and check the server's certificate against `ca_file`."""

    cert_file: str
    key_file: str
    ca_file: str = ""
    client_auth: bool = False
    server_name: str = ""  # the name expected in the servers' certificates, when not the target host

    def read(self, path: str) -> bytes:
        return Path(path).read_bytes()


KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _readable(env: Env, name: str, required: bool = False) -> str:
    path = env.str(name, "")
    if required and not path:
        env.problems.append(f"{name} is required")
    elif path and not Path(path).is_file():
        env.problems.append(f"{name}={path}: no such file")
    return path


def grpc_tls(env: Env) -> GrpcTls | None:
    """GRPC_TLS_CERT_FILE + GRPC_TLS_KEY_FILE turn TLS on; GRPC_TLS_CA_FILE verifies the other
    side; GRPC_TLS_CLIENT_AUTH=true demands client certificates (mTLS); GRPC_TLS_SERVER_NAME
    overrides the host name checked in a server's certificate."""
    cert = _readable(env, "GRPC_TLS_CERT_FILE")
    key = _readable(env, "GRPC_TLS_KEY_FILE", required=bool(cert))
    ca = _readable(env, "GRPC_TLS_CA_FILE")
    client_auth = env.bool("GRPC_TLS_CLIENT_AUTH", False)
    server_name = env.str("GRPC_TLS_SERVER_NAME", "")
    if not cert:
        if key or client_auth:
            env.problems.append("GRPC_TLS_KEY_FILE and GRPC_TLS_CLIENT_AUTH need GRPC_TLS_CERT_FILE")
        return None
    if client_auth and not ca:
        env.problems.append("GRPC_TLS_CLIENT_AUTH=true needs GRPC_TLS_CA_FILE (the CA of the client certificates)")
    return GrpcTls(cert, key, ca, client_auth, server_name)


def kafka_connection(env: Env) -> dict[str, Any]:
    """KAFKA_SECURITY_PROTOCOL (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), KAFKA_SSL_CA_FILE,
    KAFKA_SSL_CERT_FILE + KAFKA_SSL_KEY_FILE (mTLS), KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256,
    SCRAM-SHA-512), KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD -> kafka-python client options."""
    protocol = env.str("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper()
    if protocol not in KAFKA_PROTOCOLS:
        env.problems.append(f"KAFKA_SECURITY_PROTOCOL={protocol!r} is not one of {', '.join(KAFKA_PROTOCOLS)}")
        return {}
    options: dict[str, Any] = {} if protocol == "PLAINTEXT" else {"security_protocol": protocol}
    if protocol.endswith("SSL"):
        options["ssl_check_hostname"] = True
        ca = _readable(env, "KAFKA_SSL_CA_FILE")
        cert = _readable(env, "KAFKA_SSL_CERT_FILE")
        key = _readable(env, "KAFKA_SSL_KEY_FILE", required=bool(cert))
        options.update({k: v for k, v in (("ssl_cafile", ca), ("ssl_certfile", cert), ("ssl_keyfile", key)) if v})
    if protocol.startswith("SASL"):
        mechanism = env.str("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512").upper()
        if mechanism not in KAFKA_SASL_MECHANISMS:
            env.problems.append(f"KAFKA_SASL_MECHANISM={mechanism!r} is not one of {', '.join(KAFKA_SASL_MECHANISMS)}")
        username, password = env.str("KAFKA_SASL_USERNAME", ""), env.str("KAFKA_SASL_PASSWORD", "")
        if not (username and password):
            env.problems.append(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        options.update(sasl_mechanism=mechanism, sasl_plain_username=username, sasl_plain_password=password)
    return options


def mongodb_tls(env: Env) -> dict[str, Any]:
    """MONGODB_TLS=true (or a MONGODB_TLS_CA_FILE) turns TLS on; MONGODB_TLS_CA_FILE verifies the
    server, MONGODB_TLS_CERT_KEY_FILE (certificate and key in one PEM) is the client's for x.509
    or mutual TLS. (tls=true&tlsCAFile=… in MONGODB_URI works as well.)"""
    ca = _readable(env, "MONGODB_TLS_CA_FILE")
    cert_key = _readable(env, "MONGODB_TLS_CERT_KEY_FILE")
    if not env.bool("MONGODB_TLS", bool(ca or cert_key)):
        return {}
    return {"tls": True, **{k: v for k, v in (("tlsCAFile", ca), ("tlsCertificateKeyFile", cert_key)) if v}}


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


def load_settings(service_name: str, environ: Mapping[str, str] | None = None,
                  extra: Callable[[Env], dict[str, Any]] | None = None) -> Settings:
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
        kafka_prefix=kafka_prefix(env),
        grpc_workers=env.int("GRPC_WORKERS", 32, minimum=1),
        grpc_processes=env.int("GRPC_PROCESSES", 1, minimum=1),
        shutdown_grace_seconds=env.float("SHUTDOWN_GRACE_SECONDS", 10.0),
        kafka_topics=topic_settings(env),
        outbox_poll_seconds=env.float("OUTBOX_POLL_SECONDS", 1.0),
        stall_seconds=env.float("READINESS_STALL_SECONDS", 60.0),
        kafka_connection=kafka_connection(env),
        mongodb_tls=mongodb_tls(env),
        grpc_tls=grpc_tls(env),
        extra=extra(env) if extra else {},
    )
    env.check(service_name)
    return settings
