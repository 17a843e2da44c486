"""The catalog the rules and the dashboard are checked against matches what a running service
really serves on /metrics: same family names, same types."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.ops import metrics_catalog


def test_running_service_exposes_the_kit_metrics_as_catalogued(registration):
    with urllib.request.urlopen(f"{registration.http_base}/metrics", timeout=5) as reply:
        assert reply.status == 200
        exposed = {f.name: f.type for f in text_string_to_metric_families(reply.read().decode())}
    kit = [m for m in metrics_catalog.declared_metrics() if m.source.startswith("services/common/")]
    assert {m.name for m in kit} >= {"grpc_server_handled_total", "consumer_lag", "outbox_events_pending",
                                     "events_dead_lettered_total", "scheduler_job_runs_total"}
    for metric in kit:
        assert exposed.get(metric.family) == metric.kind, f"{metric.family}: exposed as {exposed.get(metric.family)}"
    for name in metrics_catalog.default_collector_series():
        assert any(name.startswith(family) for family in exposed), name
