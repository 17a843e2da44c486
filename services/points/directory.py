"""Who is who, from registration's events (the kit's read models of units, volunteers and
residents), and the authorization rules every points RPC applies to accounts."""

from __future__ import annotations

from dataclasses import dataclass

from pymongo.database import Database

from services.common.auth import Principal, Role
from services.common.errors import InvalidArgument, NotFound, PermissionDenied
from services.common.readmodels import RegistrationReadModels, unit_ref_msg
from wenming.common.v1 import common_pb2
from wenming.points.v1 import points_pb2 as pb

K = pb.AccountKind


@dataclass(frozen=True)
class Holder:
    """The person behind an account: kind, the unit paths that put them in an admin's subtree,
    and (volunteers) number and name."""

    account_id: str
    kind: int
    unit_paths: tuple[tuple[str, ...], ...]
    volunteer_number: str = ""
    name: str = ""


class Directory:
    def __init__(self, db: Database):
        self.registry = RegistrationReadModels(db)

    def ensure_indexes(self) -> None:
        self.registry.ensure_indexes()

    def handlers(self) -> dict:
        return self.registry.handlers()

    # ---- lookups ----

    def unit(self, district_id: str, unit_id: str) -> dict:
        unit = self.registry.unit(district_id, unit_id)
        if unit is None:
            raise NotFound("unit", unit_id)
        return unit

    def unit_ref(self, district_id: str, unit_id: str) -> common_pb2.UnitRef:
        return unit_ref_msg(self.unit(district_id, unit_id))

    def holder(self, district_id: str, account_id: str) -> Holder | None:
        volunteer = self.registry.volunteer(district_id, account_id)
        if volunteer is not None:
            return Holder(account_id, K.ACCOUNT_KIND_VOLUNTEER, tuple(tuple(u["path"]) for u in volunteer["units"]),
                          volunteer["number"], volunteer["name"])
        resident = self.registry.resident(district_id, account_id)
        if resident is not None:
            return Holder(account_id, K.ACCOUNT_KIND_RESIDENT, (tuple(resident["courtyard"]["path"]),))
        return None

    def volunteers(self, district_id: str, ids: list[str]) -> dict[str, dict]:
        if not ids:
            return {}
        return {v["_id"]: v for v in self.registry.volunteers.find(
            {"_id": {"$in": ids}, "district_id": district_id}, {"number": 1, "name": 1})}

    def stations_under(self, district_id: str, unit: dict) -> list[str]:
        if unit["level"] == common_pb2.UNIT_LEVEL_STATION:
            return [unit["_id"]]
        return [u["_id"] for u in self.registry.units.find(
            {"district_id": district_id, "path": unit["_id"], "level": common_pb2.UNIT_LEVEL_STATION}, {"_id": 1})]

    # ---- authorization ----

    def own_account(self, principal: Principal) -> tuple[str, int]:
        """The caller's own account: volunteers and residents have one; admins do not."""
        if principal.role == Role.ROLE_VOLUNTEER:
            return principal.subject, K.ACCOUNT_KIND_VOLUNTEER
        if principal.role == Role.ROLE_RESIDENT:
            return principal.subject, K.ACCOUNT_KIND_RESIDENT
        raise InvalidArgument.field("account_id", "must be set: your token has no account of its own")

    def volunteer_asked_for(self, principal: Principal, volunteer_id: str, what: str) -> str:
        """The volunteer a read of their `what` (表彰, 礼遇 …) concerns: a volunteer's own (naming
        nobody or themself), or one an admin or a service names inside its subtree."""
        if principal.role == Role.ROLE_VOLUNTEER:
            if volunteer_id not in ("", principal.subject):
                raise PermissionDenied(f"志愿者只能查看自己的{what}")
            return principal.subject
        if principal.role not in (Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE):
            raise PermissionDenied(f"{what}只能由志愿者本人或其所在单位的管理员查看")
        if not volunteer_id:
            raise InvalidArgument.field("volunteer_id", f"须指明志愿者（管理员本人没有{what}）")
        if self.managed(principal, volunteer_id).kind != K.ACCOUNT_KIND_VOLUNTEER:
            raise InvalidArgument.field("volunteer_id", "不是志愿者")
        return volunteer_id

    def readable(self, principal: Principal, account_id: str) -> Holder:
        """The holder of an account the caller may read: their own, or a person in an admin's
        subtree. NotFound for people this service has not heard of."""
        if account_id == principal.subject and principal.role in (Role.ROLE_VOLUNTEER, Role.ROLE_RESIDENT):
            kind = K.ACCOUNT_KIND_VOLUNTEER if principal.role == Role.ROLE_VOLUNTEER else K.ACCOUNT_KIND_RESIDENT
            return self.holder(principal.district_id, account_id) or Holder(account_id, kind, ())
        if principal.role not in (Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE):
            raise PermissionDenied("you may only see your own account")
        return self.managed(principal, account_id)

    def managed(self, principal: Principal, account_id: str) -> Holder:
        """The holder of an account inside the caller's subtree (admins and services only)."""
        if principal.role not in (Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE):
            raise PermissionDenied("only an admin of the person's unit may do this")
        holder = self.holder(principal.district_id, account_id)
        if holder is None:
            raise NotFound("account", account_id)
        if not any(principal.manages(path) for path in holder.unit_paths):
            raise PermissionDenied("that person is outside your unit's subtree")
        return holder

    def managed_unit(self, principal: Principal, unit_id: str, what: str = "unit") -> dict:
        if principal.role not in (Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE):
            raise PermissionDenied(f"only an admin of the {what} may do this")
        unit = self.unit(principal.district_id, unit_id)
        if not principal.manages(unit["path"]):
            raise PermissionDenied(f"that {what} is outside your unit's subtree")
        return unit
