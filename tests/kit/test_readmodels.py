"""Registration's events, consumed into another service's read models, over the real broker."""

from __future__ import annotations

import datetime as dt
import time
import uuid

from services.common.clock import as_utc
from services.common.consumer import EventConsumer
from services.common.readmodels import RegistrationReadModels
from tests.support.grpc_helpers import bearer
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import registration_pb2 as reg
from services.common.events import events_topic


def _wait(predicate, timeout=120.0):
    # a new consumer group reads the whole topic: every earlier test's events come first
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return predicate()


def test_units_volunteers_and_teams_follow_registration(stack, mongo_client, district):
    began = dt.datetime.now(dt.UTC).replace(microsecond=0)
    tree = district.small_tree()
    leader = district.volunteer(tree.courtyards[0].unit_id, skills=[c.SKILL_LEGAL_AID])
    member = district.volunteer(tree.courtyards[1].unit_id)
    team = district.stub.CreateTeam(reg.CreateTeamRequest(unit_id=tree.stations[0].unit_id, name="法律小队",
                                                          leader_volunteer_id=leader.volunteer_id),
                                    metadata=district.as_center(), timeout=5).team
    district.stub.AddTeamMember(reg.AddTeamMemberRequest(team_id=team.team_id, volunteer_id=member.volunteer_id),
                                metadata=district.as_center(), timeout=5)
    inst2 = district.unit(district.center_id, "第二实践所", c.UNIT_LEVEL_INSTITUTE)
    district.stub.MoveUnit(reg.MoveUnitRequest(unit_id=tree.stations[0].unit_id, new_parent_unit_id=inst2.unit_id),
                           metadata=district.as_center(), timeout=5)
    district.stub.SuspendVolunteer(reg.SuspendVolunteerRequest(volunteer_id=member.volunteer_id, reason="暂停"),
                                   metadata=bearer(tree.admins[tree.stations[0].unit_id]), timeout=5)

    db = mongo_client[f"{stack.db_prefix}kit_readmodels_{uuid.uuid4().hex[:6]}"]
    models = RegistrationReadModels(db)
    models.ensure_indexes()

    def consume(group: str) -> EventConsumer:
        consumer = EventConsumer(bootstrap_servers=stack.kafka, group_id=group,
                                 topics=[events_topic("registration")], handlers=models.handlers(),
                                 dlq_producer=None)
        consumer.start()
        return consumer

    consumer = consume(f"readmodels-{uuid.uuid4().hex[:6]}")
    try:
        yard = tree.courtyards[0].unit_id
        expected_path = [district.center_id, inst2.unit_id, tree.stations[0].unit_id, yard]
        assert _wait(lambda: (models.unit(district.id, yard) or {}).get("path") == expected_path)
        volunteer = models.volunteer(district.id, leader.volunteer_id)
        assert _wait(lambda: inst2.unit_id in (models.volunteer(district.id, leader.volunteer_id) or {})
                     .get("scope", []))
        volunteer = models.volunteer(district.id, leader.volunteer_id)
        assert volunteer["skills"] == [c.SKILL_LEGAL_AID] and volunteer["status"] == reg.VOLUNTEER_STATUS_ACTIVE
        assert _wait(lambda: (models.volunteer(district.id, member.volunteer_id) or {}).get("status") ==
                     reg.VOLUNTEER_STATUS_SUSPENDED)
        assert _wait(lambda: set((models.team(district.id, team.team_id) or {}).get("member_ids", [])) ==
                     {leader.volunteer_id, member.volunteer_id})
        # the move reaches the team's path through its own event, possibly from another partition
        assert _wait(lambda: inst2.unit_id in models.team(district.id, team.team_id)["unit_path"])
        # when a volunteer registered and a team was created (a monthly report's dates) come from their
        # first events and stay through later ones (the member's suspension)
        stored = [models.volunteer(district.id, member.volunteer_id)["registered_at"],
                  models.team(district.id, team.team_id)["created_at"]]
        assert all(began <= as_utc(at) <= dt.datetime.now(dt.UTC) for at in stored), stored
        # the topic has several partitions: the center's own event may come last
        assert _wait(lambda: db.registry_units.count_documents({"district_id": district.id}) == 9)
    finally:
        consumer.stop()

    # replaying the whole topic changes nothing
    snapshot = {name: sorted(map(str, db[name].find({"district_id": district.id})), key=str)
                for name in ("registry_units", "registry_volunteers", "registry_teams")}
    replay = consume(f"readmodels-replay-{uuid.uuid4().hex[:6]}")
    time.sleep(6)
    replay.stop()
    assert snapshot == {name: sorted(map(str, db[name].find({"district_id": district.id})), key=str)
                        for name in ("registry_units", "registry_volunteers", "registry_teams")}
