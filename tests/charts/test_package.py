"""The chart as a district receives it: `helm package` gives a self-contained .tgz (no symlink
out of the chart: its alert rules and dashboard live in charts/wenming/files/) that renders with
both example values files."""

from __future__ import annotations

import json
import tarfile

import pytest
import yaml

from tests.charts.helm import CHART_DIR, ROOT, validate

EXAMPLES = ("values-dev.yaml", "values-district-example.yaml")


def test_no_symlinks_in_the_charts():
    links = [str(path.relative_to(ROOT)) for path in (ROOT / "charts").rglob("*") if path.is_symlink()]
    assert links == [], "helm package keeps symlinks out of the archive (or breaks on them): copy the file in"


@pytest.fixture(scope="module")
def packaged(chart, tmp_path_factory):
    return chart.package(tmp_path_factory.mktemp("package"))


def test_package_carries_the_monitoring_files(packaged):
    with tarfile.open(packaged) as archive:
        members = {m.name: m for m in archive.getmembers()}
        for name in ("wenming-alerts.yaml", "wenming-dashboard.json"):
            member = members[f"wenming/files/{name}"]
            assert member.isfile()
            assert archive.extractfile(member).read() == (CHART_DIR / "files" / name).read_bytes()
        assert "wenming/charts/wenming-lib/Chart.yaml" in members  # the library chart travels inside


@pytest.mark.parametrize("example", EXAMPLES)
def test_packaged_chart_renders_each_example(chart, packaged, example):
    manifest = chart.template(values_files=[CHART_DIR / example], source=packaged)
    validate(manifest.text)
    assert {manifest.component(d) for d in manifest.of_kind("Deployment")}
    if example == "values-district-example.yaml":  # monitoring on: the files' content, from the archive
        (rule,) = manifest.of_kind("PrometheusRule")
        assert rule["spec"] == yaml.safe_load((CHART_DIR / "files" / "wenming-alerts.yaml").read_text(encoding="utf-8"))
        (dashboard,) = [c for c in manifest.of_kind("ConfigMap") if c["metadata"]["name"].endswith("-dashboard")]
        assert json.loads(dashboard["data"]["wenming-dashboard.json"]) == json.loads(
            (CHART_DIR / "files" / "wenming-dashboard.json").read_text(encoding="utf-8"))
