"""名册导入: registering a roll of volunteers or residents in one call (volunteers.py and
residents.py each import their own). Every row is validated and authorized on its own; a row that
fails is reported with the request path at fault and the reason, and the others are registered in
one write, with the events one registration each would have queued."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.errors import InvalidArgument

MAX_ROWS = 500


@dataclass
class RowResult:
    row: int
    id: str = ""
    volunteer_number: str = ""
    field: str = ""
    error: str = ""
    already_registered: bool = False

    def refuse(self, field: str, error: str, *, already_registered: bool = False) -> None:
        self.field, self.error, self.already_registered = field, error, already_registered

    @property
    def refused(self) -> bool:
        return bool(self.error)


def results_for(rows) -> list[RowResult]:
    """One result per row; INVALID_ARGUMENT on `rows` for an empty or oversized roll."""
    if not 1 <= len(rows) <= MAX_ROWS:
        raise InvalidArgument.field("rows", f"an import takes 1 to {MAX_ROWS} rows (got {len(rows)})")
    return [RowResult(i) for i in range(len(rows))]
