"""`helm lint --strict`, and values the chart must refuse with a message that says what to fix."""

from __future__ import annotations

import pytest

from tests.charts.helm import CHART_DIR


# the defaults, the minimal dev install and the district's production example
VALUES_FILES = {"defaults": [], "dev": [CHART_DIR / "values-dev.yaml"],
                "district-example": [CHART_DIR / "values-district-example.yaml"]}


@pytest.mark.parametrize("values_files", list(VALUES_FILES.values()), ids=list(VALUES_FILES))
def test_lint_strict(chart, values_files):
    output = chart.lint(values_files)
    assert "1 chart(s) linted, 0 chart(s) failed" in output
    assert "[WARNING]" not in output and "[ERROR]" not in output, output


# every key but the database URI, for the cases where the chart renders the Secret
KEYS = {"jwtPrivateKey": "k", "jwtPublicKey": "k", "piiEncryptionKeys": "k", "piiBlindIndexKeys": "k", "checkinCodeKey": "k"}

REFUSALS = {
    "grace period shorter than the shutdown": (
        {"serviceDefaults": {"terminationGracePeriodSeconds": 20}},
        "terminationGracePeriodSeconds (20) must be at least preStopSleepSeconds + shutdownGraceSeconds + 15 (30)"),
    "a key in the shared config": (
        {"config": {"PII_ENCRYPTION_KEY": "c2VjcmV0"}},
        "config: PII_ENCRYPTION_KEY is a secret; put it in the Secret"),
    "the database URI in a service's config": (
        {"services": {"registration": {"config": {"MONGODB_URI": "mongodb://u:p@h/"}}}},
        "config: MONGODB_URI is a secret"),
    "a password-looking setting": (
        {"config": {"SMTP_PASSWORD": "x"}},
        "config: SMTP_PASSWORD is a secret"),
    "a MongoDB URI naming a database": (
        {"secrets": {"existingSecret": "", "values": KEYS},
         "mongodb": {"uri": "mongodb://wenming:pw@m0,m1/admin?replicaSet=rs0"}},
        "mongodb.uri must not name a database"),
    "a rendered Secret without its keys": (
        {"secrets": {"existingSecret": ""}},
        "is required (or name an existing Secret in secrets.existingSecret)"),
    "a rendered Secret without the database URI": (
        {"secrets": {"existingSecret": "", "values": KEYS}},
        "mongodb.uri is required (or name an existing Secret in mongodb.existingSecret)"),
    "registration without its signing key": (
        {"secrets": {"existingSecret": "", "values": {**KEYS, "jwtPrivateKey": ""}},
         "mongodb": {"uri": "mongodb://u:p@h/?authSource=admin"}},
        "secrets.values.jwtPrivateKey is required"),
    "no Kafka address": (
        {"kafka": {"bootstrapServers": ""}},
        "kafka.bootstrapServers is required"),
    "nothing enabled": (
        {"services": {name: {"enabled": False} for name in
                      ("registration", "ordering", "points", "training", "media", "notification", "gateway")}},
        "no service is enabled"),
    "an unknown service": (
        {"services": {"ordring": {"enabled": True}}},
        "additional properties 'ordring' not allowed"),
    "a misspelt toggle": (
        {"serviceDefaults": {"autoscalling": {"enabled": True}}},
        "additional properties 'autoscalling' not allowed"),
    "a misspelt helm test setting": (
        {"helmTest": {"timeout": 5}},
        "additional properties 'timeout' not allowed"),
    "an unknown readiness probe type": (
        {"serviceDefaults": {"probes": {"readiness": {"type": "tcp"}}}},
        "readiness"),
    "autoscaling bounds upside down": (
        {"serviceDefaults": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 3}}},
        "minReplicas (5) is above maxReplicas (3)"),
    "bootstrap without registration": (
        {"services": {"registration": {"enabled": False}},
         "bootstrap": {"enabled": True, "districts": []}},
        "bootstrap.enabled needs services.registration.enabled"),
    "a district id that cannot name a Job": (
        {"bootstrap": {"enabled": True, "districts": [
            {"id": "Liang_Zhou", "centerName": "凉州区新时代文明实践中心", "adminUsername": "center-admin",
             "adminPasswordSecret": {"name": "p"}}]}},
        "Liang_Zhou"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refuses(chart, case):
    values, message = REFUSALS[case]
    assert message in chart.template_error(values)


def test_keys_are_required_only_for_enabled_services(chart):
    manifest = chart.template({
        "services": {"ordering": {"enabled": False}, "training": {"enabled": False}},
        "secrets": {"existingSecret": "", "values": {**KEYS, "checkinCodeKey": ""}},
        "mongodb": {"uri": "mongodb://u:p@h/?authSource=admin"}})
    (secret,) = manifest.of_kind("Secret")
    assert "checkin-code-key" not in secret["data"] and "jwt-private-key" in secret["data"]
