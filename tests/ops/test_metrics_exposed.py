"""The catalog the rules and the dashboard are checked against matches what a running service
really serves on /metrics: same family names, same types."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.ops import metrics_catalog


def test_running_service_exposes_the_kit_metrics_as_catalogued(registration):
    with urllib.request.urlopen(f"{registration.http_base}/metrics", timeout=5) as reply:
        assert reply.status == 200
        families = list(text_string_to_metric_families(reply.read().decode()))
    exposed = {f.name: f.type for f in families}
    # the database's work by collection: the outbox relay's finds on the audit collection, at least
    [database] = [f for f in families if f.name == "mongodb_command_seconds"]
    timed = {(s.labels["command"], s.labels["collection"]) for s in database.samples if s.name.endswith("_count")}
    assert ("find", "audit") in timed and ("ping", "") in timed, sorted(timed)[:20]
    kit = [m for m in metrics_catalog.declared_metrics() if m.source.startswith("services/common/")]
    assert {m.name for m in kit} >= {"grpc_server_handled_total", "consumer_lag", "outbox_events_pending",
                                     "events_dead_lettered_total", "scheduler_job_runs_total"}
    for metric in kit:
        assert exposed.get(metric.family) == metric.kind, f"{metric.family}: exposed as {exposed.get(metric.family)}"
    for name in metrics_catalog.default_collector_series():
        assert any(name.startswith(family) for family in exposed), name
