"""The shared service kit: everything a Wenming Cloud service needs that is not its domain.

config (settings from env), logs (JSON logs, personal-data redaction), errors + validation
(domain errors mapped to gRPC status), auth (JWT principals), pii (ID numbers, encryption,
blind index, masking), grpc_server (bootstrap, interceptors, health, graceful shutdown),
grpc_client (deadlines, token propagation), ops_app (Flask /healthz /readyz /metrics),
mongo (connection), events + outbox (in-document outbox and relay), consumer (idempotent
Kafka consumer with DLQ), runtime (wires a service together).
"""
