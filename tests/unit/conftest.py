"""tests/unit holds every test that needs no server: no broker, no database, no browser, no other
process — the domain's rules and the kit's pure parts. `make test-unit` runs them all in seconds
with the virtualenv alone, and `make test` runs them before it builds or starts anything. A test
here that asks for a fixture starting or reaching a server is refused when collected, so none
creeps in."""

from __future__ import annotations

from pathlib import Path

import pytest

SERVER_FIXTURES = {"stack", "registration", "spawn", "district", "module_district", "mongo_client", "registration_db",
                   "registration_events", "tool", "helm", "browser"}
HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        servers = SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if servers and item.path.is_relative_to(HERE):
            raise pytest.UsageError(f"{item.nodeid} needs {', '.join(sorted(servers))}: tests/unit is for tests "
                                    "without servers; put it beside its service's tests")
