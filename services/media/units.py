"""Units as media knows them: from registration's events (the local read model), or from the
caller's own token while registration's event is still on its way."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.auth import Principal
from services.common.errors import InvalidArgument, NotFound
from services.common.readmodels import RegistrationReadModels
from wenming.common.v1 import common_pb2


@dataclass(frozen=True)
class UnitInfo:
    unit_id: str
    level: int
    name: str
    path: tuple[str, ...]

    def ref(self) -> common_pb2.UnitRef:
        return common_pb2.UnitRef(unit_id=self.unit_id, level=self.level, name=self.name, path=list(self.path))

    def fields(self) -> dict:
        """The copy stored on an asset, article or live course (models.UnitOwned)."""
        return {"unit_id": self.unit_id, "unit_level": self.level, "unit_name": self.name,
                "unit_path": list(self.path)}

    @classmethod
    def of(cls, owned) -> UnitInfo:
        return cls(owned.unit_id, owned.unit_level, owned.unit_name, tuple(owned.unit_path))


class Units:
    def __init__(self, registry: RegistrationReadModels):
        self.registry = registry

    def find(self, district_id: str, unit_id: str) -> UnitInfo | None:
        doc = self.registry.unit(district_id, unit_id)
        return None if doc is None else UnitInfo(doc["_id"], doc["level"], doc["name"], tuple(doc["path"]))

    def get(self, district_id: str, unit_id: str) -> UnitInfo:
        unit = self.find(district_id, unit_id)
        if unit is None:
            raise NotFound("unit", unit_id)
        return unit

    def of_caller_or(self, principal: Principal, unit_id: str, field: str) -> UnitInfo:
        """`unit_id`, or the caller's own unit when it is empty."""
        if not unit_id:
            if not principal.unit_id:
                raise InvalidArgument.field(field, "must be set (your token names no unit)")
            unit_id = principal.unit_id
        unit = self.find(principal.district_id, unit_id)
        if unit is not None:
            return unit
        if unit_id == principal.unit_id:
            return UnitInfo(principal.unit_id, principal.unit_level, principal.unit_name, principal.unit_path)
        raise NotFound("unit", unit_id)


def subtree_filter(root: UnitInfo, include_ancestors: bool) -> dict:
    """Things of root's subtree, and with include_ancestors also of the units above it."""
    if include_ancestors:
        return {"$or": [{"unit_path": root.unit_id}, {"unit_id": {"$in": list(root.path)}}]}
    return {"unit_path": root.unit_id}
