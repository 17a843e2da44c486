"""三级创建 as the seeds grade it: a unit's grade for a month, quarter or year measured from the
records of its subtree — venues and rooms (registration's events), teams and active volunteers
(the kit's read models), completed activities and projects (ordering's events), rule documents
admins recorded, and the loop's figures — explained line by line by grading_rules.evaluate;
evidence recorded by admins; grades recorded by reviewers (the grade history).

The venue and project facts are kept by a consumer group of their own ("grading"), so a
deployment that adds it replays both topics from the start and counts what existed before.
"""

from __future__ import annotations

import re

from prometheus_client import Counter

from services.common.auth import Principal
from services.common.clock import CHINA, clock
from services.common.consumer import ConsumedEvent, Outcome
from services.common.errors import InvalidArgument
from services.common.events import EventSource, to_timestamp
from services.common.ids import keyed_id, new_id
from services.common.listing import key
from services.common.outbox import insert_once_with_events, insert_with_events
from services.common.readmodels import unit_ref_msg, upsert_if_newer
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import events_pb2 as ordering
from wenming.ordering.v1 import types_pb2 as ordering_types
from wenming.points.v1 import events_pb2
from wenming.points.v1 import points_pb2 as pb
from wenming.registration.v1 import events_pb2 as registration
from wenming.registration.v1 import registration_pb2 as reg

from . import grading_rules as rules
from .directory import Directory
from .grading_rules import C, GRADE_LABEL, Measure
from .models import GradeAssessment, GradeEvidence, ProjectFact, RoomFact, TaxonomyFact, VenueFact
from .periods import bounds, months_so_far, validate_period
from .rulebook import RuleBook
from .scorecards import Boards

P = ordering_types.ProjectStatus
# 立项 or further: a project the units above have taken on
TAKEN_ON = [P.PROJECT_STATUS_APPROVED, P.PROJECT_STATUS_INCUBATING, P.PROJECT_STATUS_BRANDED,
            P.PROJECT_STATUS_CONCLUDED]
PROJECT_EVENTS = (ordering.ProjectProposed, ordering.ProjectMoved, ordering.ProjectProgressReported,
                  ordering.ProjectWorkLinked)
URL = re.compile(r"^https?://\S{1,490}$")
HISTORY_SHOWN = 50

EVIDENCE_RECORDED = Counter("points_grade_evidence_total", "Grade evidence recorded by admins, by criterion",
                            ["criterion"])
ASSESSED = Counter("points_grade_assessments_total", "Unit grades recorded by reviewers, by grade and whether it "
                   "differs from the computed one", ["grade", "changed"])


class GradingFacts:
    """Handlers of the "grading" consumer: venues and rooms, projects."""

    def __init__(self) -> None:
        self.venues = VenueFact._get_collection()
        self.rooms = RoomFact._get_collection()
        self.projects = ProjectFact._get_collection()
        self.taxonomies = TaxonomyFact._get_collection()

    def handlers(self) -> dict:
        r = registration
        return {**{e.DESCRIPTOR.full_name: self._venue for e in (r.VenueCreated, r.VenueUpdated, r.VenueRetired)},
                **{e.DESCRIPTOR.full_name: self._room for e in (r.RoomCreated, r.RoomUpdated, r.RoomRetired)},
                **{e.DESCRIPTOR.full_name: self._project for e in PROJECT_EVENTS},
                ordering.DistrictTaxonomySet.DESCRIPTOR.full_name: self._taxonomy}

    def _venue(self, event: ConsumedEvent) -> Outcome:
        venue = event.payload.venue
        return upsert_if_newer(self.venues, venue.venue_id, event.envelope.aggregate_version, {
            "district_id": event.envelope.district_id, "unit_path": list(venue.unit.path), "name": venue.name,
            "active": venue.status == reg.VENUE_STATUS_ACTIVE})

    def _room(self, event: ConsumedEvent) -> Outcome:
        room = event.payload.room
        return upsert_if_newer(self.rooms, room.room_id, event.envelope.aggregate_version, {
            "district_id": event.envelope.district_id, "venue_id": room.venue_id,
            "unit_path": list(event.payload.unit.path), "active": room.status == reg.VENUE_STATUS_ACTIVE})

    def _project(self, event: ConsumedEvent) -> Outcome:
        project = event.payload.project
        return upsert_if_newer(self.projects, project.project_id, event.envelope.aggregate_version, {
            "district_id": event.envelope.district_id, "unit_path": list(project.unit.path), "name": project.name,
            "status": project.status})


    def _taxonomy(self, event: ConsumedEvent) -> Outcome:
        """Only the mandatory items: grading needs nothing else of the district's taxonomy."""
        mandatory = [{"code": item.code, "name": item.name, "level": rule.level, "min_per_month": rule.min_per_month}
                     for category in event.payload.taxonomy.categories for item in category.items
                     for rule in item.mandatory]
        return upsert_if_newer(self.taxonomies, event.envelope.district_id, event.envelope.aggregate_version,
                               {"mandatory": mandatory})

    def mandatory_items(self, district: str, level: int) -> list[dict]:
        stored = self.taxonomies.find_one({"_id": district}, {"mandatory": 1})
        return [item for item in (stored or {}).get("mandatory", ()) if item["level"] == level]


class Grading:
    def __init__(self, directory: Directory, rulebook: RuleBook, boards: Boards, facts: GradingFacts,
                 events: EventSource):
        self.directory = directory
        self.rulebook = rulebook
        self.boards = boards
        self.facts = facts
        self.events = events
        self.evidence = GradeEvidence.collection()
        self.assessments = GradeAssessment.collection()

    # ---- reads ----

    def grade(self, principal: Principal, req: pb.GetUnitGradeRequest) -> tuple[pb.UnitGrade, list[dict]]:
        """The unit's grade for the period, and its recorded grades, newest first."""
        unit, period = self._asked(principal, req)
        history = list(self.assessments.find({"district_id": principal.district_id, "unit_id": unit["_id"]},
                                              {"outbox": 0}).sort("assessed_at", -1).limit(HISTORY_SHOWN))
        return self.evaluate(principal.district_id, unit, period), history

    def scorecard(self, principal: Principal, req: pb.GetUnitScorecardRequest) -> pb.UnitScorecard:
        """The deprecated GetUnitScorecard: the same grade as GetUnitGrade, in the old shape."""
        unit, period = self._asked(principal, req)
        return rules.scorecard_of(*self._graded(principal.district_id, unit, period))

    def _asked(self, principal: Principal,
               req: pb.GetUnitGradeRequest | pb.GetUnitScorecardRequest) -> tuple[dict, pb.Period]:
        """The unit (the caller's own when none is named; admins of its subtree) and the period."""
        v = Validator()
        unit_id = v.unit_or_own("unit_id", req.unit_id, principal.unit_id)
        period = validate_period(v, "period", req.period)
        v.check()
        return self.directory.managed_unit(principal, unit_id), period

    def evaluate(self, district: str, unit: dict, period: pb.Period) -> pb.UnitGrade:
        """The unit's grade for the period as the records give it (GetUnitGrade, 评定 and the
        scorecard export all grade through here)."""
        return self._graded(district, unit, period)[0]

    def _graded(self, district: str, unit: dict, period: pb.Period) -> tuple[pb.UnitGrade, pb.UnitScorecard]:
        """The grade, and the loop's figures it was measured from."""
        scheme = self.rulebook.for_district(district).grading
        loop = self.boards.measure_loop(district, unit, period)
        measures = {**self._unit_building(district, unit, period), **rules.loop_measures(loop)}
        result = rules.evaluate(measures, scheme, len(months_so_far(period)),
                                self._mandatory(district, unit, period))
        return pb.UnitGrade(unit=unit_ref_msg(unit), period=period, score=result.score, grade=result.grade,
                            grade_label=GRADE_LABEL[result.grade], exemplary_min_score=scheme.exemplary_min_score,
                            standard_min_score=scheme.standard_min_score, lines=result.lines), loop

    def _unit_building(self, district: str, unit: dict, period: pb.Period) -> dict[int, Measure]:
        """The five 有 of the unit's subtree. Venues, teams, volunteers and projects count as they
        stand now; activities and rule documents by their dates in the period."""
        start, end = bounds(period)
        inside = {"district_id": district, "unit_path": unit["_id"]}
        rooms_per_venue: dict[str, int] = {}
        for room in self.facts.rooms.find({**inside, "active": True}, {"venue_id": 1}):
            rooms_per_venue[room["venue_id"]] = rooms_per_venue.get(room["venue_id"], 0) + 1
        venues = [(v["_id"], f"{v['name']}（功能室{rooms_per_venue[v['_id']]}间）")
                  for v in self.facts.venues.find({**inside, "active": True}, {"name": 1}).sort("_id", 1)
                  if v["_id"] in rooms_per_venue]
        teams = [(t["_id"], t["name"]) for t in self.directory.registry.teams.find(inside, {"name": 1}).sort("_id", 1)]
        volunteers_filter = {"district_id": district, "scope": unit["_id"], "status": reg.VOLUNTEER_STATUS_ACTIVE}
        volunteers = self.directory.registry.volunteers
        volunteer_records = tuple((v["_id"], f"志愿者编号 {v['number']}")
                                  for v in volunteers.find(volunteers_filter, {"number": 1}).sort("_id", 1)
                                  .limit(rules.RECORDS_SHOWN))
        activities = [(a["_id"], a.get("title") or a["_id"]) for a in self.boards.facts.activities.find(
            {**inside, "completed": 1, "starts_at": {"$gte": start, "$lt": end}}, {"title": 1}).sort("starts_at", 1)]
        projects = list(self.facts.projects.find({**inside, "status": {"$in": TAKEN_ON}},
                                                 {"name": 1, "status": 1}).sort("_id", 1))
        documents = [(e["_id"], f"{e['title']}（{e['recorded_by']} 于 {e['recorded_at'].astimezone(CHINA):%Y-%m-%d} 登记）")
                     for e in self.evidence.find({**inside, "criterion": C.GRADING_CRITERION_RULES,
                                                  "recorded_at": {"$lt": end}}, {"outbox": 0}).sort("recorded_at", 1)]
        return {
            C.GRADING_CRITERION_VENUES: _counted(venues),
            C.GRADING_CRITERION_TEAMS: _counted(teams),
            C.GRADING_CRITERION_ACTIVE_VOLUNTEERS: Measure(count := volunteers.count_documents(volunteers_filter),
                                                           records=volunteer_records, records_total=count),
            C.GRADING_CRITERION_ACTIVITIES: _counted(activities),
            C.GRADING_CRITERION_PROJECTS: _counted([(p["_id"], p["name"]) for p in projects]),
            C.GRADING_CRITERION_BRAND_PROJECT: _counted([(p["_id"], p["name"]) for p in projects
                                                         if p["status"] == P.PROJECT_STATUS_BRANDED]),
            C.GRADING_CRITERION_RULES: _counted(documents),
        }

    def _mandatory(self, district: str, unit: dict, period: pb.Period) -> tuple[rules.MandatoryItem, ...]:
        """The district's mandatory items for the unit's level, each with the completed activities
        of the subtree in the period that carried it."""
        start, end = bounds(period)
        return tuple(rules.MandatoryItem(item["code"], item["name"], item["min_per_month"],
                                         self.boards.facts.activities.count_documents({
                                             "district_id": district, "unit_path": unit["_id"], "completed": 1,
                                             "item_code": item["code"], "starts_at": {"$gte": start, "$lt": end}}))
                     for item in self.facts.mandatory_items(district, unit["level"]))

    # ---- writes ----

    def record_evidence(self, principal: Principal, req: pb.RecordGradeEvidenceRequest) -> dict:
        """Records evidence; with an idempotency key, a retry gets the first evidence. Keyed
        evidence takes its id from the key (ids.keyed_id): older evidence has no key field to
        index uniquely, and `_id` is unique already, so the insert itself refuses a duplicate."""
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id)
        v.enum("criterion", req.criterion, pb.GradingCriterion)
        asked = {"criterion": req.criterion, "title": v.text("title", req.title.strip(), min_len=2, max_len=60),
                 "document_url": v.regex("document_url", req.document_url.strip(), URL, "须为 http(s) 网址",
                                         required=False),
                 "note": v.text("note", req.note.strip(), max_len=500, required=False)}
        idempotency_key = v.idempotency_key(req.idempotency_key) if req.idempotency_key else ""
        v.check()
        unit = self.directory.managed_unit(principal, unit_id)
        evidence_id = keyed_id("gev", key(principal.district_id, principal.subject, idempotency_key)) \
            if idempotency_key else new_id("gev")

        def new_evidence() -> tuple[dict, list[dict]]:
            document = {"_id": evidence_id, "district_id": principal.district_id, "unit": _unit_doc(unit),
                        "unit_path": unit["path"], **asked, "recorded_by": principal.subject,
                        "recorded_at": clock.now_as_stored()}
            event = self.events.new(events_pb2.GradeEvidenceRecorded(evidence=evidence_msg(document)),
                                    district_id=principal.district_id, aggregate_type="grade_evidence",
                                    aggregate_id=document["_id"], version=1, actor_id=principal.subject)
            return document, [event]

        # without a key the id is new, so nothing is found and the insert cannot collide
        stored, inserted = insert_once_with_events(self.evidence, {"_id": evidence_id}, new_evidence)
        if not inserted:
            if not rules.same_evidence(stored, unit["_id"], asked):
                raise InvalidArgument.field("idempotency_key", "已用于另一份证明材料的登记")
            return stored
        EVIDENCE_RECORDED.labels(pb.GradingCriterion.Name(req.criterion)).inc()
        return stored

    def assess(self, principal: Principal, req: pb.AssessUnitGradeRequest) -> dict:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id)
        period = validate_period(v, "period", req.period)
        v.enum("grade", req.grade, pb.ScorecardGrade)
        reason = v.text("reason", req.reason.strip(), max_len=200, required=False)
        evidence_ids = v.ids("evidence_ids", list(req.evidence_ids), max_count=20)
        v.check()
        unit = self.directory.managed_unit(principal, unit_id)
        rules.require_reviewer(principal, unit["path"])
        if evidence_ids and self.evidence.count_documents({"_id": {"$in": evidence_ids}, "district_id":
                                                           principal.district_id, "unit_path": unit["_id"]}) \
                != len(set(evidence_ids)):
            raise InvalidArgument.field("evidence_ids", "须为该单位（或其下级）已登记的证明材料")
        computed = self.evaluate(principal.district_id, unit, period)
        rules.require_evidence_for_change(computed.grade, req.grade, reason, evidence_ids)
        assessor = self.directory.unit(principal.district_id, principal.unit_id) if principal.unit_id else None
        document = {"_id": new_id("gas"), "district_id": principal.district_id, "unit_id": unit["_id"],
                    "unit": _unit_doc(unit), "period": {"year": period.year, "month": period.month,
                                                        "quarter": period.quarter},
                    "grade": req.grade, "computed_grade": computed.grade, "score": computed.score, "reason": reason,
                    "evidence_ids": evidence_ids, "assessed_by": principal.subject,
                    "assessor_unit": _unit_doc(assessor) if assessor else None, "assessed_at": clock.now()}
        event = self.events.new(events_pb2.UnitGradeAssessed(assessment=assessment_msg(document)),
                                district_id=principal.district_id, aggregate_type="grade_assessment",
                                aggregate_id=document["_id"], version=1, actor_id=principal.subject)
        insert_with_events(self.assessments, document, [event])
        ASSESSED.labels(pb.ScorecardGrade.Name(req.grade), str(req.grade != computed.grade).lower()).inc()
        return document


def _counted(records: list[tuple[str, str]]) -> Measure:
    return Measure(len(records), records=tuple(records))


def _unit_doc(unit: dict) -> dict:
    return {"unit_id": unit["_id"], "level": unit["level"], "name": unit["name"], "path": list(unit["path"])}


def _ref_msg(doc: dict | None) -> common_pb2.UnitRef | None:
    return common_pb2.UnitRef(**doc) if doc else None


def evidence_msg(doc: dict) -> pb.GradeEvidence:
    return pb.GradeEvidence(evidence_id=doc["_id"], unit=_ref_msg(doc["unit"]), criterion=doc["criterion"],
                            title=doc["title"], document_url=doc["document_url"], note=doc["note"],
                            recorded_by=doc["recorded_by"], recorded_at=to_timestamp(doc["recorded_at"]))


def assessment_msg(doc: dict) -> pb.GradeAssessment:
    return pb.GradeAssessment(
        assessment_id=doc["_id"], unit=_ref_msg(doc["unit"]), period=pb.Period(**doc["period"]), grade=doc["grade"],
        grade_label=GRADE_LABEL[doc["grade"]], computed_grade=doc["computed_grade"], score=doc["score"],
        reason=doc["reason"], evidence_ids=doc["evidence_ids"], assessed_by=doc["assessed_by"],
        assessor_unit=_ref_msg(doc["assessor_unit"]), assessed_at=to_timestamp(doc["assessed_at"]))
