"""Stored documents → API messages. Only masked personal data leaves this module."""

from __future__ import annotations

from services.common.auth import Principal
from services.common.events import to_timestamp
from wenming.common.v1 import common_pb2
from wenming.registration.v1 import registration_pb2 as pb

from .models import AdminAccount, Booking, Resident, Room, Team, Unit, Venue
from .units import unit_ref
from .volunteers import VolunteerView


# What a district shows its own people (docs/design.md, "Who sees what"): the unit tree (names,
# levels, parents) and the teams (names, units, specialties) are public to everyone signed in to
# the district, so a resident can pick a courtyard and a volunteer a team. A unit head's masked
# phone and a team's leader and member ids are for the admins of that unit's subtree (and the
# members for the team's leader, who manages them).

def unit_msg(unit: Unit, viewer: Principal) -> pb.Unit:
    phone = unit.head_phone_masked if viewer.manages(unit.path) else ""
    return pb.Unit(
        unit_id=unit.id, district_id=unit.district_id, name=unit.name, level=unit.level,
        parent_unit_id=unit.parent_id, path=list(unit.path),
        head=pb.UnitHead(name=unit.head_name, phone_masked=phone),
        version=unit.version, created_at=to_timestamp(unit.created_at),
    )


def volunteer_msg(view: VolunteerView) -> pb.Volunteer:
    v = view.volunteer
    return pb.Volunteer(
        volunteer_id=v.id, district_id=v.district_id, volunteer_number=v.volunteer_number, name=v.name,
        national_id_masked=v.id_masked, phone_masked=v.phone_masked, gender=v.gender, birth_date=v.birth_date,
        political_status=v.political_status, skills=list(v.skills), service_units=[unit_ref(u) for u in view.units],
        availability=common_pb2.Availability(weekdays=list(v.availability.weekdays), periods=list(v.availability.periods)),
        status=v.status, status_reason=v.status_reason, version=v.version, registered_at=to_timestamp(v.registered_at),
    )


def team_msg(team: Team, unit: Unit, viewer: Principal) -> pb.Team:
    members = viewer.manages(unit.path) or viewer.subject == team.leader_id
    return pb.Team(
        team_id=team.id, district_id=team.district_id, name=team.name, level=team.level, unit=unit_ref(unit),
        specialty=team.specialty, leader_volunteer_id=team.leader_id if members else "",
        member_volunteer_ids=list(team.member_ids) if members else [],
        version=team.version, created_at=to_timestamp(team.created_at),
    )


def resident_msg(resident: Resident, courtyard: Unit) -> pb.Resident:
    return pb.Resident(
        resident_id=resident.id, district_id=resident.district_id, name=resident.name,
        phone_masked=resident.phone_masked, courtyard=unit_ref(courtyard),
        registered_at=to_timestamp(resident.registered_at),
    )


def admin_msg(account: AdminAccount, unit: Unit) -> pb.AdminAccount:
    return pb.AdminAccount(
        account_id=account.id, district_id=account.district_id, username=account.username,
        display_name=account.display_name, unit=unit_ref(unit), created_at=to_timestamp(account.created_at),
    )


def claims_msg(principal: Principal) -> pb.Claims:
    unit = None
    if principal.unit_id:
        unit = common_pb2.UnitRef(unit_id=principal.unit_id, level=principal.unit_level, name=principal.unit_name,
                                  path=list(principal.unit_path))
    return pb.Claims(subject=principal.subject, district_id=principal.district_id, role=principal.role, unit=unit,
                     display_name=principal.display_name, volunteer_number=principal.volunteer_number)


def imported_msg(result) -> pb.ImportedRow:
    """A row of an import (roll.RowResult)."""
    return pb.ImportedRow(row=result.row, id=result.id, volunteer_number=result.volunteer_number,
                          field=result.field, error=result.error, already_registered=result.already_registered)


def import_job_msg(job: dict, progress: tuple[int, float, int]) -> pb.ImportJob:
    done, rate, eta = progress
    return pb.ImportJob(
        job_id=job["_id"], kind=job["kind"], file_name=job["file_name"], state=job["state"], unit_id=job["unit_id"],
        total_rows=job["total_rows"], rows_done=done, registered=job["registered"],
        already_registered=job["already_registered"], refused=job["refused"], rows_per_second=round(rate, 1),
        eta_seconds=eta, created_at=to_timestamp(job["created_at"]), finished_at=to_timestamp(job.get("finished_at")),
        issues=[pb.ImportIssue(**issue) for issue in job.get("issues", [])],
    )


def _period_msg(period) -> pb.OpeningPeriod:
    return pb.OpeningPeriod(weekday=period.weekday, opens_minute=period.opens, closes_minute=period.closes)


def room_msg(room: Room) -> pb.Room:
    return pb.Room(room_id=room.id, venue_id=room.venue_id, name=room.name, kind=room.kind, capacity=room.capacity,
                   opening_hours=[_period_msg(p) for p in room.opening_hours], status=room.status,
                   version=room.version)


def venue_msg(venue: Venue, unit: Unit, rooms: list[Room]) -> pb.Venue:
    return pb.Venue(
        venue_id=venue.id, district_id=venue.district_id, unit=unit_ref(unit), name=venue.name, kind=venue.kind,
        address=venue.address, status=venue.status, version=venue.version, created_at=to_timestamp(venue.created_at),
        managers=[pb.VenueManager(account_id=m.account_id, display_name=m.display_name) for m in venue.managers],
        rooms=[room_msg(r) for r in rooms],
    )


def booking_msg(booking: Booking, room: Room, unit: Unit) -> pb.RoomBooking:
    return pb.RoomBooking(
        booking_id=booking.booking_id, room_id=room.id, venue_id=room.venue_id, unit=unit_ref(unit),
        starts_at=to_timestamp(booking.starts_at), ends_at=to_timestamp(booking.ends_at), purpose=booking.purpose,
        activity_id=booking.activity_id, training_session_id=booking.training_session_id,
        booked_by=booking.booked_by, booked_by_name=booking.booked_by_name, booked_at=to_timestamp(booking.booked_at),
        status=booking.status, cancelled_by=booking.cancelled_by, cancel_reason=booking.cancel_reason,
        cancelled_at=to_timestamp(booking.cancelled_at),
    )


def _months_msg(months: list[str], figures: dict) -> list[pb.UsageMonth]:
    return [pb.UsageMonth(month=m, bookings=figures[m].bookings, booked_minutes=figures[m].minutes) for m in months]


def usage_msg(usage) -> pb.GetVenueUsageResponse:
    """`usage`: bookings.Usage."""
    months = usage.months
    return pb.GetVenueUsageResponse(
        rooms=[pb.RoomUsage(room_id=r.room.id, room_name=r.room.name, venue_id=r.venue.id, venue_name=r.venue.name,
                            unit=unit_ref(r.unit), months=_months_msg(months, r.months)) for r in usage.rooms],
        units=[pb.UnitUsage(unit=unit_ref(unit), months=_months_msg(months, figures)) for unit, figures in usage.units],
        total=_months_msg(months, usage.total),
    )


def star_award_msg(star: dict) -> pb.StarAward:
    return pb.StarAward(star=star["star"], awarded=star["awarded"], note=star["note"],
                        decided_by=star["decided_by"], decided_by_name=star["decided_by_name"],
                        decided_at=to_timestamp(star["decided_at"]))


def household_msg(view) -> pb.Household:
    """A household (households.HouseholdView): members' phones and the address only masked."""
    household, rating = view.household, view.rating
    return pb.Household(
        household_id=household.id, district_id=household.district_id, name=household.name,
        address_masked=household.address_masked, unit=unit_ref(view.unit),
        members=[pb.HouseholdMember(resident_id=r.id, name=r.name, phone_masked=r.phone_masked)
                 for r in view.members],
        rating=pb.HouseholdRating(year=rating.year, stars=[star_award_msg(s) for s in rating.stars],
                                  stars_awarded=rating.awarded, stars_total=rating.total,
                                  all_stars=rating.all_stars),
        version=household.version, created_at=to_timestamp(household.created_at))


def household_stars_msg(stars: list[str], own) -> pb.HouseholdStars:
    return pb.HouseholdStars(stars=stars, built_in=own is None, version=own.version if own is not None else 0)
