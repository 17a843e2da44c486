"""The shared service kit: everything a Wenming Cloud service needs that is not its domain.

Wiring: runtime (a service's process: gRPC, ops HTTP, relay, consumers, jobs, GRPC_PROCESSES),
config (settings from the environment), logs (JSON logs, personal-data redaction), tracing (W3C
trace context), ops_app (/healthz /readyz /metrics), healthcheck (the chart's test hook).
Calls: grpc_server (health, drain), interceptors (trace, metrics, errors, auth, call policy),
reflection, grpc_client (deadlines, tokens),
auth (JWT principals, roles), revocations (ended sessions), audit (the admin-action record),
errors + validation (domain errors as gRPC status), http_errors (one JSON error format).
Data: mongo (connections), documents (mongoengine aggregates with an outbox), listing (lists
that read a page, not the district), cache (in-process copies dropped by events), readmodels
(local copies of registration's units and people), pii + pii_rotation (encryption, blind
indexes, masking, key rotation), ids (identifiers, page tokens), clock (time, movable in tests),
checkin (rotating check-in codes), retry (the one back-off policy and bounded retry).
Events: events (envelopes, topic names, the Kafka prefix), outbox (in-document outbox and
relay), consumer (idempotent consumer with DLQ), derived_events, kafka_clients (producer, admin,
topics), scheduler (leased periodic jobs).
"""
