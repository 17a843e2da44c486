"""The points service as a real process (one per module), and the event feed."""

from __future__ import annotations

import pytest

from tests.points.support import Feed, points_stub


@pytest.fixture(scope="package")
def feed(stack):
    f = Feed(stack.kafka)
    yield f
    f.close()


@pytest.fixture(scope="module")
def points(stack, registration, feed):
    """A points process on the test database (job passes every second)."""
    proc = stack.service("points", extra_env={"POINTS_JOB_INTERVAL_SECONDS": "1"})
    proc.start()
    try:
        proc.wait_serving(90)
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def stub(points):
    return points_stub(points.grpc_target)


@pytest.fixture
def points_db(stack, mongo_client):
    return mongo_client[f"{stack.db_prefix}points"]
