"""The training service as a real process (one for the package, on the session's registration,
broker and database), with a clock the tests can move, and districts built through registration."""

from __future__ import annotations

import time

import pytest

from tests.support.events import TopicTap
from tests.training.support import Campus
from services.common.events import events_topic

TOPIC = events_topic("training")


class MovableClock:
    """Moves the training process's clock (CLOCK_OFFSET_FILE) forward and back to now."""

    def __init__(self, path):
        self.path = path
        self.offset = 0.0
        self.set(0)

    def set(self, seconds: float) -> None:
        self.offset = seconds
        self.path.write_text(str(seconds))
        time.sleep(0.05)  # file times are coarse: let the next write get a new mtime

    def advance(self, seconds: float) -> None:
        self.set(self.offset + seconds)


@pytest.fixture(scope="package")
def clock_file(tmp_path_factory):
    return tmp_path_factory.mktemp("training-clock") / "offset"


@pytest.fixture(scope="package")
def training(stack, registration, clock_file):
    clock_file.write_text("0")
    with stack.running("training", extra_env={
        "CLOCK_OFFSET_FILE": str(clock_file),
        "TRAINING_EXPIRE_CERTIFICATIONS_INTERVAL_SECONDS": "1",
        "TRAINING_CLOSE_SESSIONS_INTERVAL_SECONDS": "1",
        "TRAINING_ROTATION_METRICS_INTERVAL_SECONDS": "1",
    }) as proc:
        yield proc


@pytest.fixture
def clock(clock_file, training):
    moved = MovableClock(clock_file)
    yield moved
    moved.set(0)


@pytest.fixture
def campus(district, training):
    built = Campus(district, training.grpc_target)
    yield built
    built.close()


@pytest.fixture(scope="module")
def module_campus(module_district, training):
    """One campus for a module whose tests only read or are refused."""
    built = Campus(module_district, training.grpc_target)
    yield built
    built.close()


@pytest.fixture
def training_events(stack, training):
    tap = TopicTap(stack.kafka, TOPIC)
    yield tap
    tap.close()


@pytest.fixture
def training_db(stack, mongo_client):
    return mongo_client[f"{stack.db_prefix}training"]
