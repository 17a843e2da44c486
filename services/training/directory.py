"""Units, volunteers and teams as training knows them from registration's events, and the
authorization rules built on them.

Training never asks registration at request time: a unit or volunteer registration has not
published yet is NOT_FOUND here for the moment it takes the event to arrive.
"""

from __future__ import annotations

from collections.abc import Iterable

from services.common.auth import Principal, Role, require_district, require_role
from services.common.errors import NotFound, PermissionDenied
from services.common.readmodels import RegistrationReadModels
from wenming.registration.v1 import registration_pb2 as reg

ACTIVE_VOLUNTEER = reg.VOLUNTEER_STATUS_ACTIVE


def is_center(unit: dict) -> bool:
    return not unit.get("parent_id")


class Directory:
    def __init__(self, models: RegistrationReadModels):
        self.models = models

    # ---- lookups ----

    def unit(self, district_id: str, unit_id: str) -> dict:
        unit = self.models.unit(district_id, unit_id)
        if unit is None:
            raise NotFound("unit", unit_id)
        return unit

    def volunteer(self, district_id: str, volunteer_id: str) -> dict:
        volunteer = self.models.volunteer(district_id, volunteer_id)
        if volunteer is None:
            raise NotFound("volunteer", volunteer_id)
        return volunteer

    def volunteers(self, district_id: str, volunteer_ids: Iterable[str]) -> dict[str, dict]:
        ids = list(volunteer_ids)
        return {v["_id"]: v for v in self.models.volunteers.find({"district_id": district_id, "_id": {"$in": ids}})}

    def active_volunteers_in(self, district_id: str, unit: dict) -> list[dict]:
        """ACTIVE volunteers serving anywhere in the unit's subtree (id, number, name)."""
        return list(self.models.volunteers.find(
            {"district_id": district_id, "scope": unit["_id"], "status": ACTIVE_VOLUNTEER},
            {"number": 1, "name": 1}).sort("_id", 1))

    def volunteer_ids_in(self, district_id: str, unit: dict) -> list[str] | None:
        """Ids of volunteers serving in the unit's subtree; None for the center (everyone)."""
        if is_center(unit):
            return None
        return [v["_id"] for v in self.models.volunteers.find({"district_id": district_id, "scope": unit["_id"]},
                                                              {"_id": 1})]

    def team_leader_ids(self, district_id: str) -> set[str]:
        return {t["leader_id"] for t in self.models.teams.find({"district_id": district_id}, {"leader_id": 1})
                if t.get("leader_id")}

    def leads_a_team(self, district_id: str, volunteer_id: str) -> bool:
        return self.models.teams.count_documents({"district_id": district_id, "leader_id": volunteer_id}, limit=1) > 0

    # ---- authorization ----

    @staticmethod
    def volunteer_paths(volunteer: dict) -> list[list[str]]:
        return [u["path"] for u in volunteer.get("units") or ()]

    def manages_volunteer(self, principal: Principal, volunteer: dict) -> bool:
        return principal.role in (Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE) and any(
            principal.manages(path) for path in self.volunteer_paths(volunteer))

    def require_admin_of_volunteer(self, principal: Principal, volunteer: dict) -> None:
        require_role(principal, Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE)
        require_district(principal, volunteer["district_id"])
        if not self.manages_volunteer(principal, volunteer):
            raise PermissionDenied("that volunteer serves outside your unit's subtree")

    def require_self_or_admin(self, principal: Principal, volunteer: dict) -> None:
        """Trainees see their own records; admins those of volunteers in their subtree."""
        require_district(principal, volunteer["district_id"])
        if principal.role == Role.ROLE_VOLUNTEER and principal.subject == volunteer["_id"]:
            return
        if self.manages_volunteer(principal, volunteer):
            return
        raise PermissionDenied("only the volunteer themself or an admin of their unit may see or change this")

    def require_admin_of_unit(self, principal: Principal, unit: dict, what: str = "unit") -> None:
        require_role(principal, Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE)
        require_district(principal, unit["district_id"])
        if not principal.manages(unit["path"]):
            raise PermissionDenied(f"that {what} is outside your unit's subtree")

    def caller_volunteer(self, principal: Principal) -> dict:
        """The calling volunteer's own read-model entry."""
        require_role(principal, Role.ROLE_VOLUNTEER)
        return self.volunteer(principal.district_id, principal.subject)
