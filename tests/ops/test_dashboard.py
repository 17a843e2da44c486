"""charts/wenming/files/wenming-dashboard.json: a dashboard Grafana can load, whose every query is valid
PromQL (checked by promtool) on series and labels the services really export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.ops import metrics_catalog
from tests.ops.test_alert_rules import known_series

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = json.loads((ROOT / "charts" / "wenming" / "files" / "wenming-dashboard.json").read_text(encoding="utf-8"))
VARIABLES = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
GRAFANA_BUILTINS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
PANELS = [p for p in DASHBOARD["panels"] if p["type"] != "row"]
TARGETS = [(p["title"], t["expr"]) for p in PANELS for t in p["targets"]]


def concrete(expr: str) -> str:
    """The expression as Grafana sends it: variables replaced by sample values."""
    def value(found: re.Match) -> str:
        name = found.group(1) or found.group(2)
        if name in GRAFANA_BUILTINS:
            return GRAFANA_BUILTINS[name]
        assert name in VARIABLES, f"${name} is not a dashboard variable"
        return ".*"
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def test_dashboard_identity_and_variables():
    assert DASHBOARD["uid"] == "wenming-services" and DASHBOARD["title"]
    assert DASHBOARD["schemaVersion"] >= 36
    assert VARIABLES["datasource"]["type"] == "datasource" and VARIABLES["datasource"]["query"] == "prometheus"
    for name in ("namespace", "service"):
        variable = VARIABLES[name]
        assert variable["type"] == "query" and variable["includeAll"] and variable["allValue"] == ".*"
        inner = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
        assert inner, variable["query"]
        assert metrics_catalog.problems(concrete(inner.group(1)), known_series()) == []
        assert inner.group(2) in metrics_catalog.TARGET_LABELS


def test_panels_are_laid_out_without_overlap():
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()
    for panel in DASHBOARD["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps another panel"
                cells.add((x, y))


def test_every_panel_queries_the_chosen_prometheus():
    for panel in PANELS:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        assert panel["description"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"] and target["legendFormat"]


def test_every_query_is_valid_promql(tmp_path, promtool):
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": concrete(expr)} for i, (_, expr) in enumerate(TARGETS)]}]}
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("title, expr", TARGETS, ids=[f"{t}#{i}" for i, (t, _) in enumerate(TARGETS)])
def test_every_query_uses_series_that_exist(title, expr):
    assert metrics_catalog.problems(concrete(expr), known_series()) == []


def test_dashboard_shows_what_ops_watch():
    used = {s.metric for _, expr in TARGETS for s in metrics_catalog.parse(concrete(expr)).selectors}
    assert used >= {"grpc_server_handled_total", "grpc_server_handling_seconds_bucket", "consumer_lag",
                    "events_dead_lettered_total", "outbox_events_pending", "scheduler_job_runs_total",
                    "ordering_orders_total", "ordering_sla_breaches_total", "points_ledger_entries_total"}
    quantiles = {q for _, expr in TARGETS for q in re.findall(r"histogram_quantile\((0\.\d+)", expr)}
    assert quantiles >= {"0.5", "0.95", "0.99"}
