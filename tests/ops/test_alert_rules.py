"""charts/wenming/files/wenming-alerts.yaml: valid for promtool, each alert proven to fire (and not to
fire) by promtool unit tests on synthetic series, on metrics and labels the services really
export, and each with a runbook section in docs/deploy.md."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.ops import metrics_catalog

ROOT = Path(__file__).resolve().parents[2]
RULES_FILE = ROOT / "charts" / "wenming" / "files" / "wenming-alerts.yaml"
UNIT_TESTS = Path(__file__).with_name("wenming-alerts.test.yaml")
GROUPS = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))["groups"]
ALERTS = [r for g in GROUPS for r in g["rules"] if "alert" in r]
RECORDS = [r for g in GROUPS for r in g["rules"] if "record" in r]


def test_promtool_accepts_the_rules(promtool):
    result = promtool("check", "rules", str(RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS) + len(RECORDS)} rules found" in result.stdout


def test_promtool_unit_tests_pass(promtool):
    result = promtool("test", "rules", UNIT_TESTS.name, cwd=UNIT_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_rule_is_unit_tested():
    tests = yaml.safe_load(UNIT_TESTS.read_text(encoding="utf-8"))["tests"]
    fired = {case["alertname"] for t in tests for case in t.get("alert_rule_test", []) if case["exp_alerts"]}
    quiet = {case["alertname"] for t in tests for case in t.get("alert_rule_test", []) if not case["exp_alerts"]}
    assert {a["alert"] for a in ALERTS} <= fired, "every alert needs a test in which it fires"
    assert len(quiet) >= len(ALERTS) // 2, "and most a test in which it does not"
    recorded = {case["expr"] for t in tests for case in t.get("promql_expr_test", [])}
    assert {r["record"] for r in RECORDS} <= recorded


@pytest.mark.parametrize("alert", ALERTS, ids=[a["alert"] for a in ALERTS])
def test_alert_is_actionable(alert):
    assert alert["alert"].startswith("Wenming")
    assert alert["labels"]["severity"] in ("warning", "critical")
    annotations = alert["annotations"]
    assert annotations["summary"] and annotations["description"]
    anchor = alert["alert"].lower()
    assert annotations["runbook"] == f"docs/deploy.md#{anchor}"
    headings = re.findall(r"^### (\S+)$", (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8"), re.M)
    assert alert["alert"] in headings, f"docs/deploy.md has no runbook section '### {alert['alert']}'"


@cache
def known_series() -> dict:
    known = metrics_catalog.catalog()
    for record in RECORDS:
        known[record["record"]] = frozenset(metrics_catalog.parse(record["expr"]).grouping_labels)
    return known


@pytest.mark.parametrize("rule", ALERTS + RECORDS, ids=[r.get("alert") or r["record"] for r in ALERTS + RECORDS])
def test_rule_uses_metrics_and_labels_that_exist(rule):
    created = frozenset(re.findall(r'label_replace\([^"]*"(\w+)"', rule["expr"]))
    assert metrics_catalog.problems(rule["expr"], known_series(), created) == []


def test_catalog_sees_the_kit_metrics_the_rules_rely_on():
    """The catalog reads services/common as the code declares it (a renamed metric fails here)."""
    declared = {m.name: m for m in metrics_catalog.declared_metrics()}
    assert declared["grpc_server_handled_total"].labels == {"grpc_service", "grpc_method", "code"}
    assert declared["grpc_server_handling_seconds"].kind == "histogram"
    assert declared["scheduler_job_runs_total"].labels == {"job_name", "result"}


@pytest.mark.parametrize("expr, complaint", [
    ("rate(grpc_server_handled_totl[5m])", "no service exports grpc_server_handled_totl"),
    ('sum(rate(grpc_server_handled_total{grpc_status="OK"}[5m]))', "has no label ['grpc_status']"),
    ("sum by (tenant) (consumer_lag)", "grouping by ['tenant']"),
    ('increase(scheduler_job_runs_total{job="x", result="error"}[5m])', ""),
])
def test_the_checker_notices_what_does_not_exist(expr, complaint):
    found = metrics_catalog.problems(expr, known_series())
    if complaint:
        assert any(complaint in p for p in found), found
    else:
        # `job` is the scrape target's label, always present
        assert found == []
