"""Session fixtures: the real broker and database (from `make test`) and the registration
service running as a real process on them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support.events import TopicTap
from tests.support.registration import District
from tests.support.stack import Stack


@pytest.fixture(scope="session")
def stack() -> Stack:
    return Stack()


@pytest.fixture(scope="session")
def registration(stack):
    # session-scoped fixtures keep the tokens they logged in with for the whole run, which can
    # outlast the 15-minute default of an access token on a busy machine
    proc = stack.service("registration", extra_env={"ACCESS_TOKEN_TTL_SECONDS": "7200"})
    proc.start()
    try:
        proc.wait_serving(90)
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def spawn(stack):
    """Starts extra service processes for one test and always stops them afterwards."""
    started = []

    def start(name: str, **options):
        proc = stack.service(name, **options)
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def district(registration):
    d = District(registration.grpc_target, registration.env)
    yield d
    d.close()


@pytest.fixture(scope="module")
def module_district(registration):
    """One district for a whole module, for tests that only read or are refused."""
    d = District(registration.grpc_target, registration.env)
    yield d
    d.close()


@pytest.fixture
def registration_events(stack, registration):
    tap = TopicTap(stack.kafka, "wenming.registration.v1.events")
    yield tap
    tap.close()


@pytest.fixture(scope="session")
def mongo_client(stack):
    from pymongo import MongoClient

    client = MongoClient(stack.mongodb_uri, serverSelectionTimeoutMS=5000)
    yield client
    client.close()


@pytest.fixture
def registration_db(stack, mongo_client):
    return mongo_client[f"{stack.db_prefix}registration"]


def pytest_collection_modifyitems(session, config, items):
    """Chart tests run last: `make test` builds Helm in the background while the rest runs."""
    items.sort(key=lambda item: "tests/charts/" in str(item.path).replace(os.sep, "/"))


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of the Helm binary, waiting for the background build `make test` started."""
    path = os.environ.get("HELM", "")
    status_file = os.environ.get("HELM_INSTALL_STATUS")
    deadline = time.monotonic() + 900
    while status_file and not Path(status_file).exists() and time.monotonic() < deadline:
        time.sleep(2)
    if status_file and Path(status_file).read_text().strip() != "0":
        log = Path(os.environ.get("HELM_INSTALL_LOG", "")).read_text(errors="replace")[-3000:]
        pytest.fail(f"building Helm failed:\n{log}")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("HELM is not set to an executable: run the suite with 'make test'")
    return path
