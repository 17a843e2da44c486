"""The whole platform behind the gateway, and real headless Chromium in front of it.

Services run as real processes on the suite's broker and database (ordering with a clock the
tests move); the gateway serves the app `make web` built; a test district is built through the
real APIs. Every device a test opens must end without JavaScript errors, console errors, server
errors the test did not provoke, or requests leaving the gateway's origin.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.auth import TokenIssuer
from services.common.events import events_topic
from services.common.kafka_clients import TopicSettings, ensure_topics, make_admin
from tests.ordering.support import Clock, Ordering, World
from tests.support.waiting import wait_until
from tests.support.registration import District
from tests.support.stack import CATCH_UP_SECONDS

from .browser import DESK, ROOT, new_device

PEERS = ("ordering", "points", "training", "notification", "media")
# gRPC servers bind with SO_REUSEPORT: a port another package's process still holds would be
# shared with it silently, so the app's processes keep ports of their own
PORT_OFFSET = 5
BUILT_APP = ROOT / "build" / "web"


@pytest.fixture(scope="package")
def app_clock(stack) -> Clock:
    clock = Clock(stack.data_dir / f"app-clock-{stack.run_id}")
    yield clock
    clock.path.unlink(missing_ok=True)


@pytest.fixture(scope="package")
def peers(stack, registration, app_clock):
    """ordering, points, training, notification and media as real processes."""
    if not (BUILT_APP / "index.html").exists():
        pytest.fail("the app is not built: run the suite with 'make test' (it runs 'make web')")
    admin = make_admin(stack.kafka, "app-tests")
    ensure_topics(admin, [events_topic(name) for name in PEERS], TopicSettings(partitions=3))
    admin.close()
    procs = {}
    try:
        for name in PEERS:
            procs[name] = stack.start_service(name, port_offset=PORT_OFFSET, log_name=f"{name}-for-app", extra_env={
                "CLOCK_OFFSET_FILE": str(app_clock.path), "SCHEDULER_INTERVAL_SECONDS": "0.5", "ACCESS_LOG": "true"})
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()


@pytest.fixture(scope="package")
def world(registration, peers, stack, mongo_client) -> World:
    """A test district (center → institute → 2 stations → 4 courtyards, a menu) built through the APIs."""
    district = District(registration.grpc_target, registration.env)
    issuer = TokenIssuer(Path(stack.secrets["JWT_PRIVATE_KEY_FILE"]).read_text())
    ordering = Ordering(peers["ordering"].grpc_target, mongo_client[f"{stack.db_prefix}ordering"])
    world = World(district, ordering, issuer)
    # the 积分超市 lists the stores of the resident's units: points must know them (its own consumer)
    units = mongo_client[f"{stack.db_prefix}points"].registry_units
    wait_until(lambda: units.count_documents({"district_id": district.id}) == 8, timeout=CATCH_UP_SECONDS,
               what="the unit tree in points")
    yield world
    ordering.close()
    district.close()


def gateway_env(registration, peers, **overrides) -> dict[str, str]:
    env = {"REGISTRATION_GRPC_TARGET": registration.grpc_target,
           "WEB_ROOT": str(BUILT_APP), "ACCESS_LOG": "true"}
    env.update({f"{name.upper()}_GRPC_TARGET": proc.grpc_target for name, proc in peers.items()})
    env.update(overrides)
    return env


@pytest.fixture(scope="package")
def gateway(stack, registration, peers, world):
    """The gateway serving the app for the test district (its login page offers that district)."""
    proc = stack.start_service("gateway", port_offset=PORT_OFFSET, log_name="gateway-for-app", extra_env=gateway_env(
        registration, peers, APP_DISTRICT_ID=world.district.id, APP_DISTRICT_NAME="测试区",
        # the suite's other workers share the cores: a dashboard count may take longer than the
        # 3 s a district's gateway allows, and the pages are not what is timed here (make bench is)
        UPSTREAM_TIMEOUT_SECONDS="10"))
    yield proc
    proc.stop()


@pytest.fixture
def device(browser, gateway, request):
    """open(name, desk=False) → a new phone (390×844) or desk (1440×900) in its own context; each
    is checked for faults when the test ends."""
    opened = []

    def open_device(name: str, desk: bool = False, base: str | None = None):
        made = new_device(browser, base or gateway.http_base, name, DESK if desk else None)
        opened.append(made)
        return made

    yield open_device
    faults = {d.name: d.unexpected_faults() for d in opened}
    for d in opened:
        d.context.close()
    faults = {name: found for name, found in faults.items() if found}
    if faults and not request.node.rep_call_failed:
        pytest.fail(f"faults on the pages: {faults}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.rep_call_failed = report.failed
    return report
