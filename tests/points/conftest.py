"""The points service as a real process (one per module), and the event feed."""

from __future__ import annotations

import pytest

from tests.points.support import Feed, points_stub, run_points


@pytest.fixture(scope="package")
def feed(stack):
    f = Feed(stack.kafka)
    yield f
    f.close()


@pytest.fixture(scope="module")
def points(stack, registration, feed):
    """A points process on the test database (job passes every second)."""
    yield from run_points(stack, POINTS_JOB_INTERVAL_SECONDS="1")


@pytest.fixture(scope="module")
def clock_file(tmp_path_factory):
    """An offset (seconds) for the clock of a module's own points process (CLOCK_OFFSET_FILE)."""
    path = tmp_path_factory.mktemp("clock") / "offset"
    path.write_text("0")
    return path


@pytest.fixture(scope="module")
def stub(points):
    return points_stub(points.grpc_target)


@pytest.fixture
def points_db(stack, mongo_client):
    return mongo_client[f"{stack.db_prefix}points"]
