"""Media fixtures: one media process for the session (its clock movable through a file), its
database, and one district whose units media has already consumed, shared by the modules (each
test creates what it needs inside it)."""

from __future__ import annotations

import pytest

from tests.support.events import TopicTap
from tests.support.registration import District

from .helpers import MediaClient, build_world
from services.common.events import events_topic

MIB = 1024 * 1024


@pytest.fixture(scope="package")
def media_clock(stack):
    path = stack.data_dir / f"media-clock-{stack.run_id}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("0")
    return path


@pytest.fixture(scope="package")
def media(stack, registration, media_clock):
    with stack.running("media", extra_env={
        "CLOCK_OFFSET_FILE": str(media_clock),
        "MEDIA_CLEANUP_INTERVAL_SECONDS": "3600",
        "MEDIA_DOCUMENT_MAX_UNPACKED_BYTES": str(20 * MIB),
    }) as proc:
        yield proc


@pytest.fixture(scope="package")
def media_client(media):
    client = MediaClient(media)
    yield client
    client.close()


@pytest.fixture(scope="package")
def media_db(stack, mongo_client):
    return mongo_client[f"{stack.db_prefix}media"]


@pytest.fixture(scope="package")
def world(registration, media, media_db):
    district = District(registration.grpc_target, registration.env)
    yield build_world(district, media_db)
    district.close()


@pytest.fixture
def move_clock(media_clock):
    """Moves the session media process's clock forward by some seconds; back to 0 afterwards."""
    yield lambda seconds: media_clock.write_text(str(seconds))
    media_clock.write_text("0")


@pytest.fixture
def media_events(stack, media):
    tap = TopicTap(stack.kafka, events_topic("media"))
    yield tap
    tap.close()
