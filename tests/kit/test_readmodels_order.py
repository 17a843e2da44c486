"""Read models converge whatever order events of different aggregates arrive in (they travel
in different partitions), against the real database."""

from __future__ import annotations

import random
import uuid

from pymongo import MongoClient

from services.common.consumer import ConsumedEvent
from services.common.events import EventSource, decode
from services.common.readmodels import RegistrationReadModels
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import events_pb2 as ev

DISTRICT = "order-test"
SOURCE = EventSource("registration")


def unit_created(unit_id, parent, path, level):
    return SOURCE.new(ev.UnitCreated(unit=ev.UnitSnapshot(unit_id=unit_id, name=unit_id, level=level,
                                                          parent_unit_id=parent, path=path)),
                      district_id=DISTRICT, aggregate_type="unit", aggregate_id=unit_id, version=1)


def scenario() -> list[tuple[str, dict]]:
    """(aggregate id, outbox entry) in publish order: a station with a courtyard, a volunteer, a
    team and a resident is moved from one institute to another."""
    old_station_path = ["C", "I1", "S"]
    yard_ref = c.UnitRef(unit_id="Y", level=c.UNIT_LEVEL_COURTYARD, name="Y", path=old_station_path + ["Y"])
    profile = ev.VolunteerProfile(volunteer_id="V", volunteer_number="ZY1", name="志愿者", service_units=[yard_ref],
                                  status=2)
    return [
        ("C", unit_created("C", "", ["C"], c.UNIT_LEVEL_CENTER)),
        ("I1", unit_created("I1", "C", ["C", "I1"], c.UNIT_LEVEL_INSTITUTE)),
        ("I2", unit_created("I2", "C", ["C", "I2"], c.UNIT_LEVEL_INSTITUTE)),
        ("S", unit_created("S", "I1", old_station_path, c.UNIT_LEVEL_STATION)),
        ("Y", unit_created("Y", "S", old_station_path + ["Y"], c.UNIT_LEVEL_COURTYARD)),
        ("V", SOURCE.new(ev.VolunteerRegistered(profile=profile), district_id=DISTRICT, aggregate_type="volunteer",
                         aggregate_id="V", version=1)),
        ("T", SOURCE.new(ev.TeamCreated(team_id="T", name="小队", unit=c.UnitRef(unit_id="S", path=old_station_path),
                                        leader_volunteer_id="V"),
                         district_id=DISTRICT, aggregate_type="team", aggregate_id="T", version=1)),
        ("R", SOURCE.new(ev.ResidentRegistered(resident_id="R", courtyard=yard_ref), district_id=DISTRICT,
                         aggregate_type="resident", aggregate_id="R", version=1)),
        ("S", SOURCE.new(ev.UnitMoved(unit_id="S", old_parent_unit_id="I1", new_parent_unit_id="I2",
                                      old_path=old_station_path, new_path=["C", "I2", "S"]),
                         district_id=DISTRICT, aggregate_type="unit", aggregate_id="S", version=2)),
    ]


def arrival_order(events, rng: random.Random):
    """A random interleaving that keeps each aggregate's own events in order (one partition)."""
    queues: dict[str, list] = {}
    for key, entry in events:
        queues.setdefault(key, []).append(entry)
    out = []
    while any(queues.values()):
        key = rng.choice([k for k, q in queues.items() if q])
        out.append(queues[key].pop(0))
    return out


def test_paths_converge_in_any_arrival_order(stack):
    client = MongoClient(stack.mongodb_uri)
    events = scenario()
    rng = random.Random(7)
    try:
        for attempt in range(12):
            db = client[f"{stack.db_prefix}rm_order_{uuid.uuid4().hex[:6]}"]
            models = RegistrationReadModels(db)
            handlers = models.handlers()
            for offset, entry in enumerate(arrival_order(events, rng) if attempt else [e for _, e in events]):
                envelope, payload = decode(entry["value"])
                handlers[envelope.event_type](ConsumedEvent(envelope, payload, "t", 0, offset))
            assert models.unit(DISTRICT, "Y")["path"] == ["C", "I2", "S", "Y"], attempt
            volunteer = models.volunteer(DISTRICT, "V")
            assert volunteer["units"][0]["path"] == ["C", "I2", "S", "Y"] and "I2" in volunteer["scope"], attempt
            assert "I1" not in volunteer["scope"], attempt
            assert models.team(DISTRICT, "T")["unit_path"] == ["C", "I2", "S"], attempt
            assert models.resident(DISTRICT, "R")["courtyard"]["path"] == ["C", "I2", "S", "Y"], attempt
            client.drop_database(db.name)
    finally:
        client.close()
