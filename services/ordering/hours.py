"""Hours a unit records (时长审核) for orders and activities alike: manual hours (荣誉时数, flagged
MANUAL) replace the verified ones for the volunteers they name, within the planned time plus the
tolerance, and only for volunteers who served."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from services.common.validation import Validator
from wenming.common.v1 import common_pb2


def parse_manual(v: Validator, entries: Sequence) -> dict[str, int]:
    """volunteer id -> minutes from the request's `manual` entries (ids checked, no repeats)."""
    manual: dict[str, int] = {}
    for i, entry in enumerate(entries):
        volunteer_id = v.ident(f"manual[{i}].volunteer_id", entry.volunteer_id)
        if volunteer_id in manual:
            v.fail(f"manual[{i}].volunteer_id", "is listed twice")
        manual[volunteer_id] = entry.minutes
    return manual


def check_manual(manual: dict[str, int], served: Callable[[str], bool], not_served: str, planned: int,
                 tolerance: int) -> None:
    """INVALID_ARGUMENT for manual hours of someone who did not serve, or beyond the cap. `manual`
    is parse_manual's answer, in the request's order, so positions name the request's entries."""
    check = Validator()
    cap = planned + tolerance
    for i, (volunteer_id, minutes) in enumerate(manual.items()):
        if not served(volunteer_id):
            check.fail(f"manual[{i}].volunteer_id", not_served)
        if not 1 <= minutes <= cap:
            check.fail(f"manual[{i}].minutes", f"must be between 1 and {cap} (the planned {planned} min plus "
                                               f"{tolerance} min tolerance; got {minutes})")
    check.check()


def entry(volunteer_id: str, minutes: int, *, manual: bool) -> dict:
    source = common_pb2.HOURS_SOURCE_MANUAL if manual else common_pb2.HOURS_SOURCE_VERIFIED
    return {"volunteer_id": volunteer_id, "minutes": minutes, "source": source}
