"""gRPC servicer: translates requests to the domain and results back. No rules live here."""

from __future__ import annotations

import datetime as dt

from services.common.auth import current_principal, optional_principal
from services.common.events import to_timestamp
from services.common.exports import ExportJobs, job_msg
from wenming.common.v1 import common_pb2
from wenming.registration.v1 import registration_pb2 as pb
from wenming.registration.v1 import registration_pb2_grpc

from .accounts import Accounts, Tokens
from .exports import start_roster
from .audit import AuditLog, action_msg
from .bookings import RoomBookings
from .households import HouseholdBook
from .import_jobs import ImportJobs
from .residents import ResidentBook
from .teams import TeamRoster
from .translate import (
    admin_msg, booking_msg, claims_msg, household_msg, household_stars_msg, import_job_msg, imported_msg, resident_msg,
    room_msg, team_msg, unit_msg, usage_msg, venue_msg, volunteer_msg,
)
from .units import UnitDirectory, unit_ref
from .venues import Place, VenueRegistry
from .volunteers import VolunteerRegistry

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RegistrationService"].full_name
# callable without a token: logging in, checking a token, refreshing or ending a session (the
# refresh token is the proof), and signing up
PUBLIC_METHODS = ("Login", "VerifyToken", "RefreshToken", "Logout", "RegisterVolunteer", "RegisterResident")


def _expiry(unix_seconds: int):
    return to_timestamp(dt.datetime.fromtimestamp(unix_seconds, dt.UTC))


def _tokens(tokens: Tokens) -> dict:
    """The fields LoginResponse and RefreshTokenResponse share."""
    fields = {"access_token": tokens.access_token, "expires_at": _expiry(tokens.expires),
              "claims": claims_msg(tokens.principal)}
    if tokens.refresh is not None:
        fields.update(refresh_token=tokens.refresh.token, refresh_expires_at=to_timestamp(tokens.refresh.expires_at))
    return fields


def _page(token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=token)


class RegistrationServicer(registration_pb2_grpc.RegistrationServiceServicer):
    def __init__(self, units: UnitDirectory, volunteers: VolunteerRegistry, teams: TeamRoster,
                 residents: ResidentBook, accounts: Accounts, audit: AuditLog, imports: ImportJobs,
                 venues: VenueRegistry, bookings: RoomBookings, exports: ExportJobs, households: HouseholdBook):
        self.units = units
        self.households = households
        self.venues = venues
        self.bookings = bookings
        self.exports = exports
        self.imports = imports
        self.audit = audit
        self.volunteers = volunteers
        self.teams = teams
        self.residents = residents
        self.accounts = accounts

    # accounts and tokens

    def Login(self, request, context):
        return pb.LoginResponse(**_tokens(self.accounts.login(request)))

    def RefreshToken(self, request, context):
        return pb.RefreshTokenResponse(**_tokens(self.accounts.refresh(request.refresh_token)))

    def Logout(self, request, context):
        self.accounts.logout(request.refresh_token)
        return pb.LogoutResponse()

    def VerifyToken(self, request, context):
        principal, expires = self.accounts.verify(request.access_token)
        return pb.VerifyTokenResponse(claims=claims_msg(principal), expires_at=_expiry(expires))

    def ChangePassword(self, request, context):
        ended = self.accounts.change_password(current_principal(), request)
        return pb.ChangePasswordResponse(sessions_ended=ended)

    def CreateInspectorAccount(self, request, context):
        account = self.accounts.create_inspector(current_principal(), request)
        return pb.CreateInspectorAccountResponse(account_id=account.id)

    def CreateAdminAccount(self, request, context):
        account, unit = self.accounts.create_admin(current_principal(), request)
        return pb.CreateAdminAccountResponse(account=admin_msg(account, unit))

    def CreateServiceAccount(self, request, context):
        account = self.accounts.create_service(current_principal(), request)
        return pb.CreateServiceAccountResponse(account_id=account.id)

    # units

    def CreateUnit(self, request, context):
        unit = self.units.create(current_principal(), request.parent_unit_id, request.name, request.level,
                                 request.head_name, request.head_phone)
        return pb.CreateUnitResponse(unit=unit_msg(unit, current_principal()))

    def GetUnit(self, request, context):
        principal = current_principal()
        return pb.GetUnitResponse(unit=unit_msg(self.units.read(principal, request.unit_id), principal))

    def ListSubtree(self, request, context):
        principal = current_principal()
        units, token = self.units.list_subtree(principal, request.root_unit_id, request.level,
                                               request.page.page_size, request.page.page_token)
        return pb.ListSubtreeResponse(units=[unit_msg(u, principal) for u in units], page=_page(token))

    def GetUnitStats(self, request, context):
        unit, counts = self.units.stats(current_principal(), request.unit_id)
        return pb.GetUnitStatsResponse(unit=unit_ref(unit), **counts)

    def RenameUnit(self, request, context):
        unit = self.units.rename(current_principal(), request.unit_id, request.name, request.expected_version)
        return pb.RenameUnitResponse(unit=unit_msg(unit, current_principal()))

    def MoveUnit(self, request, context):
        unit = self.units.move(current_principal(), request.unit_id, request.new_parent_unit_id)
        return pb.MoveUnitResponse(unit=unit_msg(unit, current_principal()))

    # volunteers

    def RegisterVolunteer(self, request, context):
        view = self.volunteers.register(optional_principal(), request)
        return pb.RegisterVolunteerResponse(volunteer=volunteer_msg(view))

    def GetVolunteer(self, request, context):
        return pb.GetVolunteerResponse(volunteer=volunteer_msg(self.volunteers.get(current_principal(),
                                                                                   request.volunteer_id)))

    def UpdateVolunteer(self, request, context):
        return pb.UpdateVolunteerResponse(volunteer=volunteer_msg(self.volunteers.update(current_principal(), request)))

    def ApproveVolunteer(self, request, context):
        view = self.volunteers.approve(current_principal(), request.volunteer_id)
        return pb.ApproveVolunteerResponse(volunteer=volunteer_msg(view))

    def SuspendVolunteer(self, request, context):
        view = self.volunteers.suspend(current_principal(), request.volunteer_id, request.reason)
        return pb.SuspendVolunteerResponse(volunteer=volunteer_msg(view))

    def ReinstateVolunteer(self, request, context):
        view = self.volunteers.reinstate(current_principal(), request.volunteer_id)
        return pb.ReinstateVolunteerResponse(volunteer=volunteer_msg(view))

    def SearchVolunteers(self, request, context):
        views, token = self.volunteers.search(current_principal(), request)
        return pb.SearchVolunteersResponse(volunteers=[volunteer_msg(v) for v in views], page=_page(token))

    def ImportVolunteers(self, request, context):
        rows = self.volunteers.import_roll(current_principal(), request.rows)
        return pb.ImportVolunteersResponse(rows=[imported_msg(r) for r in rows],
                                           registered=sum(1 for r in rows if not r.refused))

    # teams

    def _team_msg(self, team):
        return team_msg(team, self.units.get(team.district_id, team.unit_id), current_principal())

    def CreateTeam(self, request, context):
        return pb.CreateTeamResponse(team=self._team_msg(self.teams.create(current_principal(), request)))

    def GetTeam(self, request, context):
        return pb.GetTeamResponse(team=self._team_msg(self.teams.get(current_principal(), request.team_id)))

    def ListTeams(self, request, context):
        teams, token = self.teams.list(current_principal(), request.unit_id, request.page.page_size,
                                       request.page.page_token)
        return pb.ListTeamsResponse(teams=[self._team_msg(t) for t in teams], page=_page(token))

    def AddTeamMember(self, request, context):
        team = self.teams.add_member(current_principal(), request.team_id, request.volunteer_id)
        return pb.AddTeamMemberResponse(team=self._team_msg(team))

    def RemoveTeamMember(self, request, context):
        team = self.teams.remove_member(current_principal(), request.team_id, request.volunteer_id)
        return pb.RemoveTeamMemberResponse(team=self._team_msg(team))

    # residents

    def RegisterResident(self, request, context):
        resident, courtyard = self.residents.register(optional_principal(), request)
        return pb.RegisterResidentResponse(resident=resident_msg(resident, courtyard))

    def GetResident(self, request, context):
        resident, courtyard = self.residents.get(current_principal(), request.resident_id)
        return pb.GetResidentResponse(resident=resident_msg(resident, courtyard))

    def SearchResidents(self, request, context):
        found, token = self.residents.search(current_principal(), request)
        return pb.SearchResidentsResponse(residents=[resident_msg(r, c) for r, c in found], page=_page(token))

    def ImportResidents(self, request, context):
        rows = self.residents.import_roll(current_principal(), request.rows)
        return pb.ImportResidentsResponse(rows=[imported_msg(r) for r in rows],
                                          registered=sum(1 for r in rows if not r.refused))

    # onboarding from a spreadsheet

    def GetImportTemplate(self, request, context):
        return self.imports.onboarding.template(current_principal(), request)

    def CheckImport(self, request, context):
        checked = self.imports.check(current_principal(), request)
        return pb.CheckImportResponse(rows=checked.rows, valid_rows=len(checked.valid),
                                      marked_cells=checked.marked_cells, issues=checked.issues(),
                                      error_workbook=checked.workbook())

    def StartImport(self, request, context):
        job = self.imports.start(current_principal(), request)
        return pb.StartImportResponse(job=import_job_msg(job, self.imports.progress(job)))

    def GetImportJob(self, request, context):
        job = self.imports.get(current_principal(), request.job_id)
        return pb.GetImportJobResponse(job=import_job_msg(job, self.imports.progress(job)))

    # exports

    def StartRosterExport(self, request, context):
        job = start_roster(self.exports, self.units, current_principal(), request)
        return pb.StartRosterExportResponse(job=job_msg(job))

    def GetExportJob(self, request, context):
        return pb.GetExportJobResponse(job=job_msg(self.exports.get(current_principal(), request.job_id)))

    def DownloadExport(self, request, context):
        for part in self.exports.download(current_principal(), request.job_id):
            yield pb.DownloadExportResponse(part=part)

    # the audit record

    def ListAuditRecords(self, request, context):
        records, token = self.audit.list(current_principal(), request)
        return pb.ListAuditRecordsResponse(records=[action_msg(r) for r in records], page=_page(token))

    def ExportAuditRecords(self, request, context):
        csv, count, truncated = self.audit.export(current_principal(), request)
        return pb.ExportAuditRecordsResponse(csv=csv, records=count, truncated=truncated)

    # venues (阵地), rooms and bookings

    def _venue_msg(self, place: Place) -> pb.Venue:
        return venue_msg(place.venue, place.unit, self.venues.rooms_of([place.venue.id])[place.venue.id])

    def CreateVenue(self, request, context):
        return pb.CreateVenueResponse(venue=self._venue_msg(self.venues.create(current_principal(), request)))

    def UpdateVenue(self, request, context):
        return pb.UpdateVenueResponse(venue=self._venue_msg(self.venues.update(current_principal(), request)))

    def RetireVenue(self, request, context):
        return pb.RetireVenueResponse(venue=self._venue_msg(self.venues.retire(current_principal(), request.venue_id)))

    def GetVenue(self, request, context):
        return pb.GetVenueResponse(venue=self._venue_msg(self.venues.get(current_principal(), request.venue_id)))

    def ListVenues(self, request, context):
        places, token = self.venues.list(current_principal(), request)
        rooms = self.venues.rooms_of([p.venue.id for p in places])
        return pb.ListVenuesResponse(venues=[venue_msg(p.venue, p.unit, rooms[p.venue.id]) for p in places],
                                     page=_page(token))

    def CreateRoom(self, request, context):
        return pb.CreateRoomResponse(room=room_msg(self.venues.create_room(current_principal(), request)))

    def UpdateRoom(self, request, context):
        return pb.UpdateRoomResponse(room=room_msg(self.venues.update_room(current_principal(), request)))

    def RetireRoom(self, request, context):
        return pb.RetireRoomResponse(room=room_msg(self.venues.retire_room(current_principal(), request.room_id)))

    def BookRoom(self, request, context):
        booking, room, place = self.bookings.book(current_principal(), request)
        return pb.BookRoomResponse(booking=booking_msg(booking, room, place.unit))

    def CancelRoomBooking(self, request, context):
        booking, room, place = self.bookings.cancel(current_principal(), request)
        return pb.CancelRoomBookingResponse(booking=booking_msg(booking, room, place.unit))

    def ListRoomBookings(self, request, context):
        bookings, room, place = self.bookings.list(current_principal(), request)
        return pb.ListRoomBookingsResponse(bookings=[booking_msg(b, room, place.unit) for b in bookings])

    def GetVenueUsage(self, request, context):
        return usage_msg(self.bookings.usage(current_principal(), request))

    # households (户) and their stars (十星文明户)

    def CreateHousehold(self, request, context):
        return pb.CreateHouseholdResponse(household=household_msg(self.households.create(current_principal(), request)))

    def AddHouseholdMember(self, request, context):
        view = self.households.add_member(current_principal(), request)
        return pb.AddHouseholdMemberResponse(household=household_msg(view))

    def RemoveHouseholdMember(self, request, context):
        view = self.households.remove_member(current_principal(), request)
        return pb.RemoveHouseholdMemberResponse(household=household_msg(view))

    def RateHousehold(self, request, context):
        return pb.RateHouseholdResponse(household=household_msg(self.households.rate(current_principal(), request)))

    def GetHousehold(self, request, context):
        view = self.households.get(current_principal(), request)
        return pb.GetHouseholdResponse(household=household_msg(view) if view is not None else None)

    def ListHouseholds(self, request, context):
        views, token = self.households.list(current_principal(), request)
        return pb.ListHouseholdsResponse(households=[household_msg(v) for v in views], page=_page(token))

    def GetHouseholdStars(self, request, context):
        return pb.GetHouseholdStarsResponse(stars=household_stars_msg(*self.households.stars(
            current_principal().district_id)))

    def SetHouseholdStars(self, request, context):
        own = self.households.set_stars(current_principal(), request)
        return pb.SetHouseholdStarsResponse(stars=household_stars_msg(list(own.stars), own))
