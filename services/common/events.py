"""Event envelopes: building them for the outbox and decoding them in consumers.

Every Kafka value is a wenming.common.v1.EventEnvelope whose payload is a message from some
events.proto of the contract. The record key is the aggregate id (per-aggregate order), and the
headers repeat event id, type and district for routing without decoding.
"""

from __future__ import annotations

import datetime as dt
import importlib
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pool, message, message_factory
from google.protobuf.timestamp_pb2 import Timestamp

from wenming.common.v1 import common_pb2

from .clock import clock
from .ids import new_id
from . import tracing
from .mongo import RawDoc


# put before every topic and consumer group name of this release (KAFKA_PREFIX): several
# releases — districts, or parallel test runs — share one Kafka cluster without reading each
# other's events. Set once at start, before any topic name is made.
_kafka_prefix = ""


def set_kafka_prefix(prefix: str) -> None:
    global _kafka_prefix
    _kafka_prefix = prefix


def kafka_name(name: str) -> str:
    """A topic or consumer group name as this release knows it on the cluster."""
    return _kafka_prefix + name


def events_topic(service: str) -> str:
    return release_events_topic(_kafka_prefix, service)


def release_events_topic(prefix: str, service: str) -> str:
    """A service's topic in the release whose KAFKA_PREFIX is `prefix` (the roll-up reads many releases')."""
    return f"{prefix}wenming.{service}.v1.events"


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


class PoisonEvent(Exception):
    """An event that can never be applied (malformed, unknown type, violates the contract)."""


def to_timestamp(value: dt.datetime | None) -> Timestamp | None:
    """None for no time: a message field given None stays unset, instead of an empty Timestamp
    that JSON shows as 1970-01-01T00:00:00Z."""
    if value is None:
        return None
    if value.tzinfo is None:  # the database hands back naive UTC datetimes
        value = value.replace(tzinfo=dt.UTC)
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


@dataclass(frozen=True)
class EventSource:
    """Creates outbox entries for one service's topic."""

    service: str

    @property
    def topic(self) -> str:
        return events_topic(self.service)

    def new(self, payload: message.Message, *, district_id: str, aggregate_type: str, aggregate_id: str,
            version: int, actor_id: str = "", occurred_at: dt.datetime | None = None,
            event_id: str | None = None) -> RawDoc:
        """An outbox entry (a plain dict, stored inside the aggregate document). `event_id` is
        random unless the caller derives a stable one (see derived_events.py)."""
        envelope = common_pb2.EventEnvelope(
            event_id=event_id or new_id("evt"),
            event_type=payload.DESCRIPTOR.full_name,
            district_id=district_id,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            aggregate_version=version,
            occurred_at=to_timestamp(occurred_at or clock.now()),
            trace_id=tracing.current_trace_id(),
            actor_id=actor_id,
        )
        envelope.payload.Pack(payload)
        return {
            "id": envelope.event_id,
            "topic": self.topic,
            "key": aggregate_id,
            "type": envelope.event_type,
            "district": district_id,
            "trace": envelope.trace_id,
            "value": envelope.SerializeToString(),
        }


def record_headers(entry: RawDoc) -> list[tuple[str, bytes]]:
    return [
        ("event_id", entry["id"].encode()),
        ("event_type", entry["type"].encode()),
        ("district_id", entry["district"].encode()),
        # entries queued before traces were recorded have none
        *tracing.record_header(entry.get("trace", "")),
    ]


def _load_contract() -> None:
    """Imports every events module of the contract, so any event type in it can be decoded."""
    import wenming  # generated code is a namespace package: walk its folders

    for root in wenming.__path__:
        for path in sorted(Path(root).rglob("events_pb2.py")):
            relative = path.relative_to(root).with_suffix("")
            importlib.import_module("wenming." + ".".join(relative.parts))


_load_contract()


def payload_class(full_name: str) -> type[message.Message]:
    """The generated class for a message of the contract; PoisonEvent if it is not in it."""
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(full_name)
    except KeyError:
        raise PoisonEvent(f"unknown event type {full_name!r}") from None
    return message_factory.GetMessageClass(descriptor)


def decode(value: bytes) -> tuple[common_pb2.EventEnvelope, message.Message]:
    """Parses an envelope and unpacks its payload; PoisonEvent when that is impossible."""
    envelope = common_pb2.EventEnvelope()
    try:
        envelope.ParseFromString(value)
    except message.DecodeError as exc:
        raise PoisonEvent(f"not an EventEnvelope: {exc}") from None
    if not envelope.event_id or not envelope.event_type or not envelope.district_id:
        raise PoisonEvent("envelope lacks event_id, event_type or district_id")
    type_name = envelope.payload.TypeName()
    if type_name != envelope.event_type:
        raise PoisonEvent(f"payload is {type_name!r} but event_type says {envelope.event_type!r}")
    payload = payload_class(type_name)()
    if not envelope.payload.Unpack(payload):
        raise PoisonEvent(f"payload does not decode as {type_name}")
    return envelope, payload
