"""Session fixtures: the real broker and database (from `make test`) and the registration
service running as a real process on them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import tools
from tests.support.events import TopicTap
from tests.support.registration import District
from tests.support.stack import Stack
from services.common.events import events_topic


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    servers = Stack()
    yield servers
    servers.stop_leftovers()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, one per test process: Playwright's sync API runs one event loop a process,
    so the app's pages and any other package's page tests share it."""
    from playwright.sync_api import sync_playwright

    from tests.app.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def registration(stack):
    # session-scoped fixtures keep the tokens they logged in with for the whole run, which can
    # outlast the 15-minute default of an access token on a busy machine
    # and every test logs in from 127.0.0.1: the per-address lockout is tested on a replica of its own
    with stack.running("registration", extra_env={"ACCESS_TOKEN_TTL_SECONDS": "7200",
                                                  "LOGIN_MAX_FAILURES_PER_ADDRESS": "100000"}) as proc:
        yield proc


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
    tap = TopicTap(stack.kafka, events_topic("registration"))
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


def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist each test package (tests/<package>/) runs whole on one worker: a
    package's service processes share consumer groups on the broker, as one release's replicas
    do, and two packages' processes alive at once in one worker would split a group's partitions
    between databases that each expect all of them."""
    from xdist.scheduler import LoadScopeScheduling

    class PackageScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _package(nodeid) or nodeid

    config.option.loadscopereorder = False  # packages go out in collection order: longest first
    return PackageScheduling(config, log)


# Seconds each package's tests took in a full `make test` on 2 cores (a busy machine, 2026-12-07;
# only the proportions matter). The packages go to the workers longest first so that the lanes
# end together; an unlisted package counts as short.
PACKAGE_SECONDS = {
    "points": 583, "kit": 515, "registration": 479, "ordering": 349, "app": 299, "contract": 216,
    "training": 188, "conformance": 180, "media": 144, "notification": 94, "chaos": 86, "charts": 64,
    "upgrade": 64, "gateway": 33, "ops": 4,
}


def _package(nodeid: str) -> str | None:
    parts = nodeid.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "tests" else None


def pytest_collection_modifyitems(session, config, items):
    """Longest packages first (see PACKAGE_SECONDS); inside a package the tests that run a
    command-line tool go last: `make test` installs the tools in the background meanwhile
    (tests/support/tools.py)."""
    items.sort(key=lambda item: (-PACKAGE_SECONDS.get(_package(item.nodeid), 0),
                                 "tool" in getattr(item, "fixturenames", ())))
    for item in items:  # their wait for the install is bounded there, not by the per-test timeout
        if "tool" in getattr(item, "fixturenames", ()) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(tools.INSTALL_WAIT_SECONDS + 300))


@pytest.fixture(scope="session")
def tool():
    """tool(name) -> the path of an installed checker (helm, grpcurl, ghz, buf, protoc-gen-go, promtool)."""
    return tools.tool_path


@pytest.fixture(scope="session")
def helm(tool) -> str:
    return tool("helm")
