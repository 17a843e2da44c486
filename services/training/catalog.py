"""The course catalog (志愿者学习通用课程目录).

A course belongs to a unit (usually the center); admins of that unit or above write it, anyone of
the district reads it. Every revision of its content is kept inside the course document, so a
session, a quiz attempt or a completion always points at the exact content it used.
"""

from __future__ import annotations

import builtins
import re

from services.common.auth import Principal
from services.common.errors import FailedPrecondition, NotFound
from services.common.events import EventSource
from services.common.clock import clock
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.validation import Validator
from services.common.readmodels import stored_unit_ref, unit_ref_msg
from wenming.common.v1 import common_pb2
from wenming.training.v1 import events_pb2, training_pb2 as pb, types_pb2

from .directory import Directory
from .models import Course

CERTIFICATION_CODE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
MAX_QUESTIONS = 100
MAX_MATERIALS = 50
DEFAULT_MAX_ATTEMPTS = 3
ACTIVE, RETIRED = pb.COURSE_STATUS_ACTIVE, pb.COURSE_STATUS_RETIRED


def _validate_quiz(v: Validator, quiz: pb.Quiz, field: str) -> dict:
    questions = []
    if len(quiz.questions) > MAX_QUESTIONS:
        v.fail(f"{field}.questions", f"allows at most {MAX_QUESTIONS} questions (got {len(quiz.questions)})")
    for i, q in enumerate(quiz.questions[:MAX_QUESTIONS]):
        at = f"{field}.questions[{i}]"
        text = v.text(f"{at}.text", q.text, max_len=500, multiline=True)
        if not 2 <= len(q.options) <= 8:
            v.fail(f"{at}.options", f"needs 2 to 8 options (got {len(q.options)})")
        options = [v.text(f"{at}.options[{j}]", o, max_len=200) for j, o in enumerate(q.options)]
        if len(set(options)) != len(options):
            v.fail(f"{at}.options", "lists the same option twice")
        correct = list(q.correct_options)
        if not correct:
            v.fail(f"{at}.correct_options", "must name at least one right option")
        if len(set(correct)) != len(correct):
            v.fail(f"{at}.correct_options", "lists the same option twice")
        for j, index in enumerate(correct):
            if not 0 <= index < len(options):
                v.fail(f"{at}.correct_options[{j}]", f"must be an option index from 0 to {len(options) - 1}")
        questions.append({"question_id": f"q{i + 1}", "text": text, "options": options,
                          "correct_options": sorted(set(correct))})
    if questions:
        v.int_range(f"{field}.pass_mark", quiz.pass_mark, 1, 100)
        max_attempts = quiz.max_attempts or DEFAULT_MAX_ATTEMPTS
        v.int_range(f"{field}.max_attempts", max_attempts, 1, 10)
    else:
        if quiz.pass_mark:
            v.fail(f"{field}.pass_mark", "a quiz without questions has no pass mark")
        max_attempts = 0
    return {"questions": questions, "pass_mark": quiz.pass_mark if questions else 0, "max_attempts": max_attempts}


def validate_content(v: Validator, content: pb.CourseContent, field: str = "content") -> dict:
    """The stored form of a course revision's content; violations named by request path."""
    title = v.text(f"{field}.title", content.title, max_len=60, min_len=2)
    description = v.text(f"{field}.description", content.description, max_len=2000, required=False, multiline=True)
    v.enum(f"{field}.category", content.category, types_pb2.CourseCategory)
    v.enum(f"{field}.level", content.level, types_pb2.CourseLevel)
    v.int_range(f"{field}.minutes", content.minutes, 10, 6000)
    tiers = v.enums(f"{field}.required_for_tiers", list(content.required_for_tiers), types_pb2.VolunteerTier,
                    max_count=2)
    skills = v.enums(f"{field}.required_for_skills", list(content.required_for_skills), common_pb2.Skill,
                     max_count=16)
    if len(content.materials) > MAX_MATERIALS:
        v.fail(f"{field}.materials", f"allows at most {MAX_MATERIALS} items (got {len(content.materials)})")
    materials, asset_ids = [], set()
    for i, m in enumerate(content.materials[:MAX_MATERIALS]):
        asset_id = v.ident(f"{field}.materials[{i}].asset_id", m.asset_id)
        if asset_id in asset_ids:
            v.fail(f"{field}.materials[{i}].asset_id", "is listed twice")
        asset_ids.add(asset_id)
        materials.append({"asset_id": asset_id, "title": v.text(f"{field}.materials[{i}].title", m.title,
                                                                 max_len=100)})
    quiz = _validate_quiz(v, content.quiz, f"{field}.quiz")
    certification = None
    if content.HasField("certification"):
        cert = content.certification
        certification = {
            "code": v.regex(f"{field}.certification.code", cert.code, CERTIFICATION_CODE,
                            "must be 2 to 32 of a-z, 0-9 and '_', starting with a letter (e.g. first_aid)"),
            "name": v.text(f"{field}.certification.name", cert.name, max_len=40),
            "valid_months": v.int_range(f"{field}.certification.valid_months", cert.valid_months, 0, 120),
        }
    return {"title": title, "description": description, "category": content.category, "level": content.level,
            "minutes": content.minutes, "required_for_tiers": tiers, "required_for_skills": skills,
            "materials": materials, "quiz": quiz, "certification": certification}


def certification_spec(content: dict) -> types_pb2.CertificationSpec | None:
    cert = content.get("certification")
    return types_pb2.CertificationSpec(**cert) if cert else None


def latest(course: Course) -> dict:
    return course.revisions[-1]


def snapshot(course: Course) -> events_pb2.CourseSnapshot:
    content = latest(course)
    return events_pb2.CourseSnapshot(
        course_id=course.id, title=content["title"], category=content["category"], level=content["level"],
        minutes=content["minutes"], revision=content["revision"], owner_unit=unit_ref_msg(course.owner_unit),
        certification=certification_spec(content), retired=course.status == RETIRED)


class CourseCatalog:
    def __init__(self, directory: Directory, events: EventSource):
        self.directory = directory
        self.events = events

    # ---- reads ----

    def load(self, district_id: str, course_id: str) -> Course:
        return Course.in_district(district_id, course_id, "course")

    @staticmethod
    def shows_answers(principal: Principal, course: Course) -> bool:
        """Quiz answers are for the course's keepers only."""
        return principal.manages(course.owner_path)

    def get(self, principal: Principal, course_id: str, revision: int) -> tuple[Course, dict]:
        v = Validator()
        course_id = v.ident("course_id", course_id)
        if revision < 0:
            v.fail("revision", "must not be negative")
        v.check()
        course = self.load(principal.district_id, course_id)
        if revision > course.latest_revision:
            raise NotFound("course revision", f"{course_id}@{revision}")
        return course, course.revisions[(revision or course.latest_revision) - 1]

    def list(self, principal: Principal, req: pb.ListCoursesRequest) -> tuple[list[Course], str]:
        v = Validator()
        v.enum("level", req.level, types_pb2.CourseLevel, required=False)
        v.enum("category", req.category, types_pb2.CourseCategory, required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        query: dict = {"district_id": principal.district_id}
        if not req.include_retired:
            query["status"] = ACTIVE
        if req.level:
            query["level"] = req.level
        if req.category:
            query["category"] = req.category
        if after:
            query["_id"] = {"$gt": after}
        found = [Course.from_raw(r) for r in Course.collection().find(query, {"outbox": 0}).sort("_id", 1)
                 .limit(size + 1)]
        token = encode_page_token(found[size - 1].id) if len(found) > size else ""
        return found[:size], token

    def required_for(self, district_id: str, core: bool, skills: builtins.list[int]) -> builtins.list[Course]:
        """Active courses required for a volunteer of this tier offering these skills."""
        tiers = {types_pb2.VOLUNTEER_TIER_ALL} | ({types_pb2.VOLUNTEER_TIER_CORE} if core else set())
        required = []
        for course in Course.objects(district_id=district_id, status=ACTIVE).exclude("outbox"):
            content = latest(course)
            if tiers & set(content["required_for_tiers"]) or set(skills) & set(content["required_for_skills"]):
                required.append(course)
        return required

    # ---- writes ----

    def _event(self, payload, course: Course, version: int, actor: str) -> dict:
        return self.events.new(payload, district_id=course.district_id, aggregate_type="course",
                               aggregate_id=course.id, version=version, actor_id=actor, occurred_at=clock.now())

    def create(self, principal: Principal, req: pb.CreateCourseRequest) -> Course:
        v = Validator()
        owner_id = v.unit_or_own("owner_unit_id", req.owner_unit_id, principal.unit_id)
        content = validate_content(v, req.content)
        v.check()
        owner = self.directory.unit(principal.district_id, owner_id)
        self.directory.require_admin_of_unit(principal, owner)
        now = clock.now()
        course = Course(id=new_id("crs"), district_id=principal.district_id, owner_unit=stored_unit_ref(owner),
                        owner_path=list(owner["path"]), status=ACTIVE, level=content["level"],
                        category=content["category"], latest_revision=1,
                        revisions=[{**content, "revision": 1, "revised_at": now, "revised_by": principal.subject}],
                        created_at=now)
        course.insert([self._event(events_pb2.CoursePublished(course=snapshot(course)), course, 1,
                                   principal.subject)])
        return course

    def _load_for_change(self, principal: Principal, course_id: str) -> Course:
        course = self.load(principal.district_id, course_id)
        self.directory.require_admin_of_unit(principal, {**course.owner_unit, "district_id": course.district_id},
                                             "course")
        if course.status != ACTIVE:
            raise FailedPrecondition("the course is retired; publish a new course instead")
        return course

    def revise(self, principal: Principal, req: pb.ReviseCourseRequest) -> Course:
        v = Validator()
        course_id = v.ident("course_id", req.course_id)
        if req.expected_revision < 1:
            v.fail("expected_revision", "must be the latest revision you edited (1 or more)")
        content = validate_content(v, req.content)
        v.check()
        course = self._load_for_change(principal, course_id)
        if req.expected_revision != course.latest_revision:
            raise FailedPrecondition(f"the course was revised meanwhile (latest revision is "
                                     f"{course.latest_revision}); reload and retry")
        revision = {**content, "revision": course.latest_revision + 1, "revised_at": clock.now(),
                    "revised_by": principal.subject}
        preview = Course.from_raw({**course.to_mongo().to_dict(), "revisions": [revision]})
        event = self._event(events_pb2.CourseRevised(course=snapshot(preview)), course, course.version + 1,
                            principal.subject)
        changed = Course.change(
            {"_id": course.id, "version": course.version, "latest_revision": course.latest_revision},
            {"$set": {"latest_revision": revision["revision"], "level": content["level"],
                      "category": content["category"]},
             "$push": {"revisions": revision}}, [event])
        if changed is None:
            raise FailedPrecondition("the course changed meanwhile; reload and retry")
        return changed

    def retire(self, principal: Principal, course_id: str, reason: str) -> Course:
        v = Validator()
        course_id = v.ident("course_id", course_id)
        reason = v.text("reason", reason, max_len=200)
        v.check()
        course = self._load_for_change(principal, course_id)
        preview = Course.from_raw({**course.to_mongo().to_dict(), "status": RETIRED})
        event = self._event(events_pb2.CourseRetired(course=snapshot(preview), reason=reason), course,
                            course.version + 1, principal.subject)
        changed = Course.change({"_id": course.id, "version": course.version, "status": ACTIVE},
                                {"$set": {"status": RETIRED, "retire_reason": reason}}, [event])
        if changed is None:
            raise FailedPrecondition("the course changed meanwhile; reload and retry")
        return changed
