"""Every change is on wenming.registration.v1.events exactly as the envelope says, and an event
written while the broker is away is published after the service is killed and restarted."""

from __future__ import annotations

import time

import pytest

from tests.support.events import TopicTap
from tests.support.grpc_helpers import bearer
from tests.support.registration import District, new_phone
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import events_pb2 as ev
from wenming.registration.v1 import registration_pb2 as reg
from services.common.events import events_topic


def test_each_change_emits_its_event_with_a_complete_envelope(district, registration_events):
    tree = district.small_tree()
    phone = new_phone()
    volunteer = district.volunteer(tree.courtyards[0].unit_id, phone=phone)
    admin = bearer(tree.admins[tree.stations[0].unit_id])
    district.stub.SuspendVolunteer(reg.SuspendVolunteerRequest(volunteer_id=volunteer.volunteer_id, reason="调查"),
                                   metadata=admin, timeout=5)
    district.stub.ReinstateVolunteer(reg.ReinstateVolunteerRequest(volunteer_id=volunteer.volunteer_id),
                                     metadata=admin, timeout=5)
    district.stub.UpdateVolunteer(reg.UpdateVolunteerRequest(volunteer_id=volunteer.volunteer_id,
                                                             update_fields=["skills"], skills=[c.SKILL_HAIRCUT]),
                                  metadata=admin, timeout=5)
    team = district.stub.CreateTeam(reg.CreateTeamRequest(unit_id=tree.stations[0].unit_id, name="小队",
                                                          leader_volunteer_id=volunteer.volunteer_id),
                                    metadata=admin, timeout=5).team
    other = district.volunteer(tree.courtyards[1].unit_id)
    district.stub.AddTeamMember(reg.AddTeamMemberRequest(team_id=team.team_id, volunteer_id=other.volunteer_id),
                                metadata=admin, timeout=5)
    district.stub.RemoveTeamMember(reg.RemoveTeamMemberRequest(team_id=team.team_id, volunteer_id=other.volunteer_id),
                                   metadata=admin, timeout=5)
    resident, _ = district.resident(tree.courtyards[0].unit_id)
    district.stub.RenameUnit(reg.RenameUnitRequest(unit_id=tree.courtyards[3].unit_id, name="改名小院"),
                             metadata=district.as_center(), timeout=5)

    # (the tap opens after the bootstrap) 7 units and their 7 admins, 2 volunteers, 3 volunteer
    # changes, team created + member added + removed, 1 resident, 1 rename
    expected = 7 + 7 + 2 + 3 + 3 + 1 + 1
    events = registration_events.events(district.id, at_least=expected, timeout=20, settle=1.0)
    assert len(events) == expected
    for envelope, payload, record in events:
        assert envelope.event_id.startswith("evt_") and envelope.district_id == district.id
        assert envelope.event_type == payload.DESCRIPTOR.full_name
        assert record.key.decode() == envelope.aggregate_id
        headers = dict(record.headers)
        assert headers["event_id"].decode() == envelope.event_id
        assert headers["event_type"].decode() == envelope.event_type
        assert envelope.occurred_at.seconds > 0 and envelope.aggregate_version >= 1
    assert len({e.event_id for e, _, _ in events}) == expected

    volunteer_events = [(e, p) for e, p, _ in events if e.aggregate_id == volunteer.volunteer_id]
    assert [type(p).__name__ for _, p in volunteer_events] == [
        "VolunteerRegistered", "VolunteerSuspended", "VolunteerReinstated", "VolunteerUpdated"]
    assert [e.aggregate_version for e, _ in volunteer_events] == [1, 2, 3, 4]
    suspended = volunteer_events[1][1]
    assert suspended.reason == "调查" and suspended.profile.status == reg.VOLUNTEER_STATUS_SUSPENDED
    assert list(volunteer_events[3][1].profile.skills) == [c.SKILL_HAIRCUT]
    assert volunteer_events[0][1].profile.service_units[0].path == list(tree.courtyards[0].path)

    resident_event = next(p for e, p, _ in events if e.aggregate_id == resident.resident_id)
    assert isinstance(resident_event, ev.ResidentRegistered) and resident_event.self_registered


@pytest.mark.serial  # stops the shared broker or database
def test_no_event_is_lost_when_the_service_dies_before_publishing(stack, spawn):
    """Broker down → changes are stored with their pending events → the service is SIGKILLed →
    broker and service come back → every event is published."""
    # a registration process with a database of its own, so no other relay touches its outbox
    proc = spawn("registration", port_offset=1, database_prefix=f"{stack.db_prefix}crash_",
                 log_name="registration-crash")
    proc.wait_serving(60)
    tap = TopicTap(stack.kafka, events_topic("registration"))
    district = District(proc.grpc_target, proc.env)
    try:
        assert len(tap.events(district.id, at_least=2, timeout=15)) == 2  # center unit + its admin
        stack.control("stop", "kafka")
        try:
            created = [district.unit(district.center_id, f"断网所{i}", c.UNIT_LEVEL_INSTITUTE) for i in range(3)]
            time.sleep(1.0)
            proc.kill()  # SIGKILL: no graceful last relay pass
        finally:
            stack.control("start", "kafka")
        proc.start()
        proc.wait_serving(90)
        events = tap.events(district.id, at_least=5, timeout=60, settle=2.0)
        published = {e.aggregate_id for e, p, _ in events[2:] if isinstance(p, ev.UnitCreated)}
        assert published == {u.unit_id for u in created}
        assert len({e.event_id for e, _, _ in events}) == 5
    finally:
        tap.close()
        district.close()
