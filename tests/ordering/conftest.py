"""The ordering service as a real process on the real broker and database, with a clock the
tests move (CLOCK_OFFSET_FILE), and worlds built through registration."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.auth import TokenIssuer
from services.common.kafka_clients import TopicSettings, ensure_topics, make_admin
from tests.support.events import TopicTap
from tests.support.registration import District

from .support import Clock, Ordering, World
from services.common.events import events_topic

ORDERING_TOPIC = events_topic("ordering")
TRAINING_TOPIC = events_topic("training")
# fast schedulers, so SLA escalation and auto-close show within a second or two of a clock move
ORDERING_ENV = {"SCHEDULER_INTERVAL_SECONDS": "0.5"}


@pytest.fixture(scope="package")
def clock(stack) -> Clock:
    clock = Clock(stack.data_dir / f"ordering-clock-{stack.run_id}")
    yield clock
    clock.path.unlink(missing_ok=True)


@pytest.fixture(scope="package")
def ordering_env(clock) -> dict[str, str]:
    return {**ORDERING_ENV, "CLOCK_OFFSET_FILE": str(clock.path)}


@pytest.fixture(scope="package")
def ordering_proc(stack, registration, ordering_env):
    # training owns its topic; it is created here so ordering's consumer finds it at once
    admin = make_admin(stack.kafka, "ordering-tests")
    ensure_topics(admin, [TRAINING_TOPIC], TopicSettings(partitions=3))
    admin.close()
    with stack.running("ordering", extra_env=ordering_env) as proc:
        yield proc


@pytest.fixture(scope="package")
def ordering_db(stack, mongo_client):
    return mongo_client[f"{stack.db_prefix}ordering"]


@pytest.fixture(scope="package")
def ordering(ordering_proc, ordering_db) -> Ordering:
    client = Ordering(ordering_proc.grpc_target, ordering_db)
    yield client
    client.close()


@pytest.fixture(scope="package")
def issuer(stack) -> TokenIssuer:
    return TokenIssuer(Path(stack.secrets["JWT_PRIVATE_KEY_FILE"]).read_text())


@pytest.fixture
def shifted(clock):
    """Tests that move the clock get it back at 0 afterwards."""
    yield clock
    clock.set(0)


def _world(registration, ordering, issuer):
    district = District(registration.grpc_target, registration.env)
    return district, World(district, ordering, issuer)


@pytest.fixture(scope="package")
def world(registration, ordering, issuer) -> World:
    """One world for the session (building a district costs seconds): every test works with
    residents, volunteers and orders of its own inside it."""
    district, w = _world(registration, ordering, issuer)
    yield w
    district.close()


@pytest.fixture(scope="module")
def own_world(registration, ordering, issuer) -> World:
    """A world for modules that change district-wide settings or count everything in a unit."""
    district, w = _world(registration, ordering, issuer)
    yield w
    district.close()


@pytest.fixture
def replica(spawn, ordering_env):
    """Starts a second ordering process on the same database and clock. Test ports lie in the
    kernel's ephemeral range, so one may be held by a client socket: then the next offset."""

    def start():
        for offset in (1, 2, 3):
            proc = spawn("ordering", port_offset=offset, extra_env=ordering_env, log_name=f"ordering-replica{offset}")
            try:
                proc.wait_serving(90)
                return proc
            except RuntimeError as exc:
                if "already in use" not in str(exc) and "it is in use" not in str(exc):
                    raise
        raise RuntimeError("no free port for a second ordering process")

    return start


@pytest.fixture
def ordering_events(stack, ordering):
    tap = TopicTap(stack.kafka, ORDERING_TOPIC)
    yield tap
    tap.close()
