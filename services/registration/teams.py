"""Volunteer teams: 总队 (center), 分队 (institute), 小队 (station), 小组 (courtyard).

A team's level follows its unit's level; its leader and members are ACTIVE volunteers serving
inside the unit's subtree; a volunteer may be in several teams.
"""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role, require_manages
from services.common.clock import clock
from services.common.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied
from services.common.events import EventSource
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.registration.v1 import events_pb2, registration_pb2 as pb

from .models import Team, Unit, Volunteer
from .units import UnitDirectory, unit_ref

TEAM_LEVEL_FOR_UNIT = {
    common_pb2.UNIT_LEVEL_CENTER: pb.TEAM_LEVEL_CORPS,
    common_pb2.UNIT_LEVEL_INSTITUTE: pb.TEAM_LEVEL_DETACHMENT,
    common_pb2.UNIT_LEVEL_STATION: pb.TEAM_LEVEL_SQUAD,
    common_pb2.UNIT_LEVEL_COURTYARD: pb.TEAM_LEVEL_GROUP,
}


class TeamRoster:
    def __init__(self, units: UnitDirectory, events: EventSource):
        self.units = units
        self.events = events

    def _load(self, principal: Principal, team_id: str) -> Team:
        v = Validator()
        team_id = v.ident("team_id", team_id)
        v.check()
        team = Team.objects(id=team_id, district_id=principal.district_id).first()
        if team is None:
            raise NotFound("team", team_id)
        return team

    def _eligible_member(self, team_unit: Unit, volunteer_id: str, field: str) -> Volunteer:
        volunteer = Volunteer.objects(id=volunteer_id, district_id=team_unit.district_id).first()
        if volunteer is None:
            raise NotFound("volunteer", volunteer_id)
        if volunteer.status != pb.VOLUNTEER_STATUS_ACTIVE:
            raise FailedPrecondition(f"volunteer {volunteer_id} is not ACTIVE")
        paths = [u.path for u in self.units.get_many(team_unit.district_id, list(volunteer.unit_ids), field)]
        if not any(team_unit.id in path for path in paths):
            raise FailedPrecondition(f"volunteer {volunteer_id} does not serve inside the team's unit")
        return volunteer

    def _require_team_manager(self, principal: Principal, team: Team) -> None:
        """Admins of the team's unit (or above) and the team's own leader manage membership."""
        if principal.role == Role.ROLE_VOLUNTEER and principal.subject == team.leader_id:
            return
        if principal.role in (Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE):
            require_manages(principal, team.district_id, team.unit_path, "team")
            return
        raise PermissionDenied("only the team leader or an admin of the team's unit may change its members")

    def create(self, principal: Principal, req: pb.CreateTeamRequest) -> Team:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id)
        name = v.text("name", req.name, max_len=60)
        v.enum("specialty", req.specialty, common_pb2.Skill, required=False)
        leader_id = v.ident("leader_volunteer_id", req.leader_volunteer_id)
        v.check()
        unit = self.units.get(principal.district_id, unit_id)
        require_manages(principal, unit.district_id, unit.path)
        self._eligible_member(unit, leader_id, "leader_volunteer_id")
        team = Team(id=new_id("team"), district_id=unit.district_id, name=name, level=TEAM_LEVEL_FOR_UNIT[unit.level],
                    unit_id=unit.id, unit_path=list(unit.path), specialty=req.specialty, leader_id=leader_id,
                    member_ids=[leader_id], created_at=clock.now())
        event = self.events.new(
            events_pb2.TeamCreated(team_id=team.id, name=name, level=team.level, unit=unit_ref(unit),
                                   specialty=req.specialty, leader_volunteer_id=leader_id),
            district_id=team.district_id, aggregate_type="team", aggregate_id=team.id, version=1,
            actor_id=principal.subject)
        try:
            team.insert([event])
        except DuplicateKeyError:
            raise AlreadyExists(f"the unit already has a team named {name!r}") from None
        return team

    def get(self, principal: Principal, team_id: str) -> Team:
        return self._load(principal, team_id)

    def list(self, principal: Principal, unit_id: str, page_size: int, page_token: str) -> tuple[list[Team], str]:
        v = Validator()
        unit_id = v.ident("unit_id", unit_id, required=False) or principal.unit_id
        size = v.page_size("page.page_size", page_size)
        after = decode_page_token(page_token)
        v.check()
        root = self.units.get(principal.district_id, unit_id)
        query: dict = {"district_id": principal.district_id, "unit_path": root.id}
        if after:
            query["_id"] = {"$gt": after}
        teams = [Team.from_raw(r) for r in Team.collection().find(query, {"outbox": 0}).sort("_id", 1).limit(size + 1)]
        next_token = encode_page_token(teams[size - 1].id) if len(teams) > size else ""
        return teams[:size], next_token

    def _change_members(self, principal: Principal, team: Team, update: dict, payload) -> Team:
        event = self.events.new(payload, district_id=team.district_id, aggregate_type="team", aggregate_id=team.id,
                                version=team.version + 1, actor_id=principal.subject)
        changed = Team.change({"_id": team.id, "version": team.version}, update, [event])
        if changed is None:
            raise FailedPrecondition("the team changed meanwhile; reload and retry")
        return changed

    def add_member(self, principal: Principal, team_id: str, volunteer_id: str) -> Team:
        v = Validator()
        volunteer_id = v.ident("volunteer_id", volunteer_id)
        v.check()
        team = self._load(principal, team_id)
        self._require_team_manager(principal, team)
        if volunteer_id in team.member_ids:
            raise AlreadyExists(f"volunteer {volunteer_id} is already a member")
        self._eligible_member(self.units.get(team.district_id, team.unit_id), volunteer_id, "volunteer_id")
        return self._change_members(principal, team, {"$push": {"member_ids": volunteer_id}},
                                    events_pb2.TeamMemberAdded(team_id=team.id, volunteer_id=volunteer_id))

    def remove_member(self, principal: Principal, team_id: str, volunteer_id: str) -> Team:
        v = Validator()
        volunteer_id = v.ident("volunteer_id", volunteer_id)
        v.check()
        team = self._load(principal, team_id)
        self._require_team_manager(principal, team)
        if volunteer_id not in team.member_ids:
            raise FailedPrecondition(f"volunteer {volunteer_id} is not a member of this team")
        if volunteer_id == team.leader_id:
            raise FailedPrecondition("the leader cannot be removed; appoint another leader first")
        return self._change_members(principal, team, {"$pullAll": {"member_ids": [volunteer_id]}},
                                    events_pb2.TeamMemberRemoved(team_id=team.id, volunteer_id=volunteer_id))
