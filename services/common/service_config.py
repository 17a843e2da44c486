"""The gRPC service config every client of these services should use: which calls are safe to
try again when a server went away (UNAVAILABLE, CANCELLED), and how.

A call is retried only when repeating it cannot change anything twice: the reads (the contract
marks them `(wenming.common.v1.method_effect) = METHOD_EFFECT_READ`), the writes that carry an
`idempotency_key` (the service answers a repeat with the first outcome), and the writes the
contract marks `idempotency_level = IDEMPOTENT` (protobuf's own option: the request itself says
what it does once — an appeal of one incident with its reason — and a repeat of it is answered
with the first outcome). UNAVAILABLE is what a
client sees while a server drains or restarts (GOAWAY, refused stream, connection refused);
CANCELLED is what gRPC core answers a call that reached a stopping server before any handler
took it (grpc/grpc#41785, grpcio 1.85; measured here: 1 call in a rolling restart of 4 pods) —
for these calls either is safe to repeat, so a rolling restart costs them a short wait, not an
error. Our servers never answer CANCELLED themselves, and a caller's own cancellation is not
retried. Other calls keep gRPC's defaults (only transparent retries of calls the server never saw).

No waitForReady: a service that is down stays a quick UNAVAILABLE (the gateway's 503) once the
retries are spent (~1.5 s), not a wait until the deadline; a rolling restart needs only the retries.

No retryThrottling: a rolling restart makes a burst of UNAVAILABLE on one channel, which is when
retries must stay on; maxAttempts and the backoff bound the extra load instead.

The kit's client channels (grpc_client.py, and so the gateway's upstreams) use it; other systems
take the copy in protos/service-config.json, which a test keeps equal to what this module makes
from the contract:

    python -m services.common.service_config > protos/service-config.json
"""

from __future__ import annotations

import importlib
import json
from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import MethodDescriptor

from wenming.common.v1 import common_pb2

# every service of the contract: (proto module, service name)
CONTRACT_SERVICES = (
    ("wenming.registration.v1.registration_pb2", "RegistrationService"),
    ("wenming.ordering.v1.ordering_pb2", "OrderingService"),
    ("wenming.points.v1.points_pb2", "PointsService"),
    ("wenming.training.v1.training_pb2", "TrainingService"),
    ("wenming.media.v1.media_pb2", "MediaService"),
    ("wenming.notification.v1.notification_pb2", "NotificationService"),
    ("wenming.rollup.v1.rollup_pb2", "RollupService"),
)
IDEMPOTENCY_FIELD = "idempotency_key"
# 5 attempts (gRPC's cap) spaced ~0.1, 0.2, 0.4, 0.8 s (jittered): a server that drains hands its
# connections over well within that; the call's deadline ends the retries earlier if it is shorter
RETRY_POLICY = {
    "maxAttempts": 5,
    "initialBackoff": "0.1s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"],
}


def method_effect_of(method: MethodDescriptor) -> int:
    """The contract's method_effect of a method (0 when unmarked)."""
    # protoc's .pyi types the extension as a plain FieldDescriptor, types-protobuf wants an extension's
    effect: int = method.GetOptions().Extensions[common_pb2.method_effect]  # type: ignore[index]
    return effect


def retryable(method: MethodDescriptor) -> bool:
    """A read, a write the server deduplicates by the request's idempotency key, or one the
    contract marks idempotent."""
    return (method_effect_of(method) == common_pb2.METHOD_EFFECT_READ
            or IDEMPOTENCY_FIELD in method.input_type.fields_by_name
            or method.GetOptions().idempotency_level == descriptor_pb2.MethodOptions.IDEMPOTENT)


def service_config() -> dict[str, Any]:
    names = []
    for module, service in CONTRACT_SERVICES:
        descriptor = importlib.import_module(module).DESCRIPTOR.services_by_name[service]
        names += [{"service": descriptor.full_name, "method": m.name} for m in descriptor.methods if retryable(m)]
    return {"methodConfig": [{"name": names, "retryPolicy": RETRY_POLICY}]}


@cache
def service_config_json() -> str:
    """The config as published (protos/service-config.json) and as channels take it."""
    return json.dumps(service_config(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(service_config_json(), end="")
