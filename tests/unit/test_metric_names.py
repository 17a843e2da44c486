"""The naming conventions of docs/architecture.md (Metrics), on every metric the services declare."""

from __future__ import annotations

import re

import pytest

from tests.ops import metrics_catalog

DECLARED = metrics_catalog.declared_metrics()
# the one name for each concept; the names on the left must not be used
SYNONYMS = {"district": "district_id", "grpc_code": "code", "status_code": "code or status",
            "http_status": "status", "http_code": "status"}
NOT_BASE_UNITS = re.compile(r"_(minutes|hours|days|milliseconds|ms|kilobytes|megabytes)(_|$)")
GRPC_CODE_METRICS = {"grpc_server_handled_total"}


@pytest.mark.parametrize("metric", DECLARED, ids=[m.name for m in DECLARED])
def test_name_and_labels_follow_the_conventions(metric):
    assert not NOT_BASE_UNITS.search(metric.name), f"{metric.name}: publish in base units (seconds, bytes)"
    assert metric.name.endswith("_total") == (metric.kind == "counter"), metric.name
    for label in metric.labels:
        assert label not in SYNONYMS, f"{metric.name}: label {label!r}, call it {SYNONYMS[label]}"
        assert label not in metrics_catalog.TARGET_LABELS, f"{metric.name}: {label!r} is Prometheus' own label"
    if "code" in metric.labels:
        assert metric.name in GRPC_CODE_METRICS, f"{metric.name}: `code` is a gRPC status code; HTTP is `status`"


def test_every_service_is_covered():
    sources = {m.source.split("/")[1] for m in DECLARED}
    assert {"common", "ordering", "points", "training", "media", "notification", "gateway"} <= sources
