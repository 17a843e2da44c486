"""Quizzes: trainees who attended answer the quiz of the course revision their session was
scheduled with, until they pass, run out of attempts or the session closes.

Score = percent of questions answered exactly right (every right option and no other),
rounded down; unanswered questions are wrong. A pass completes the course (CourseCompleted),
which grants the course's certification, if any.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.auth import Principal, Role, require_role
from services.common.clock import clock
from services.common.errors import Aborted, FailedPrecondition, PermissionDenied
from services.common.validation import Validator
from wenming.training.v1 import events_pb2, training_pb2 as pb

from . import metrics
from .sessions import ATTENDEES, SCHEDULED, T, SessionBook, SessionDoc, has_quiz, trainee_guard

MAX_QUESTIONS = 100


@dataclass(frozen=True)
class Grade:
    correct: int
    questions: int

    @property
    def score(self) -> int:
        return 100 * self.correct // self.questions if self.questions else 0


def read_answers(v: Validator, answers) -> dict[str, set[int]]:
    """The answers' shape, before the quiz is known: question id -> selected option indexes."""
    if len(answers) > MAX_QUESTIONS:
        v.fail("answers", f"allows at most {MAX_QUESTIONS} answers (got {len(answers)})")
    selected: dict[str, set[int]] = {}
    for i, answer in enumerate(answers[:MAX_QUESTIONS]):
        question_id = v.text(f"answers[{i}].question_id", answer.question_id, max_len=16)
        if question_id in selected:
            v.fail(f"answers[{i}].question_id", "is answered twice")
        options = list(answer.selected_options)
        if not options:
            v.fail(f"answers[{i}].selected_options", "must select at least one option")
        if len(set(options)) != len(options):
            v.fail(f"answers[{i}].selected_options", "selects the same option twice")
        selected[question_id] = set(options)
    return selected


def check_against(v: Validator, quiz: dict, answers, selected: dict[str, set[int]]) -> None:
    """Every answer must be to a question of this quiz and pick options it has."""
    questions = {q["question_id"]: q for q in quiz["questions"]}
    for i, answer in enumerate(answers[:MAX_QUESTIONS]):
        question = questions.get(answer.question_id.strip())
        if question is None:
            v.fail(f"answers[{i}].question_id", f"is not a question of this quiz ({', '.join(questions)})")
            continue
        count = len(question["options"])
        for j, option in enumerate(answer.selected_options):
            if not 0 <= option < count:
                v.fail(f"answers[{i}].selected_options[{j}]", f"must be an option index from 0 to {count - 1}")


def grade(quiz: dict, selected: dict[str, set[int]]) -> Grade:
    correct = sum(1 for q in quiz["questions"] if selected.get(q["question_id"]) == set(q["correct_options"]))
    return Grade(correct, len(quiz["questions"]))


def attempts_left(session: SessionDoc, trainee: dict) -> int:
    if trainee["state"] != T.TRAINEE_STATE_ATTENDED:
        return 0
    return max(0, session.course["quiz"]["max_attempts"] - trainee["attempts"])


class Quizzes:
    def __init__(self, sessions: SessionBook):
        self.sessions = sessions

    def _trainee(self, principal: Principal, session: SessionDoc) -> dict:
        require_role(principal, Role.ROLE_VOLUNTEER)
        trainee = session.trainees.get(principal.subject)
        if trainee is None:
            raise PermissionDenied("you are not on this session's roster")
        if not has_quiz(session):
            raise FailedPrecondition("this course has no quiz: attending completes it")
        if trainee["state"] not in ATTENDEES:
            raise FailedPrecondition("check in to the session before taking its quiz")
        return trainee

    def get(self, principal: Principal, session_id: str) -> tuple[SessionDoc, dict]:
        session = self.sessions.load_checked(principal, session_id)
        return session, self._trainee(principal, session)

    def submit(self, principal: Principal, req: pb.SubmitQuizRequest) -> tuple[SessionDoc, Grade, bool]:
        v = Validator()
        session_id = v.ident("session_id", req.session_id)
        selected = read_answers(v, req.answers)
        v.check()
        session = self.sessions.load(principal.district_id, session_id)
        trainee = self._trainee(principal, session)
        quiz = session.course["quiz"]
        check_against(v, quiz, req.answers, selected)
        v.check()
        if session.status != SCHEDULED:
            raise FailedPrecondition("the session is closed; quiz attempts are no longer accepted")
        if trainee["state"] == T.TRAINEE_STATE_PASSED:
            raise FailedPrecondition("you passed this quiz already")
        if trainee["state"] == T.TRAINEE_STATE_FAILED:
            raise FailedPrecondition("no quiz attempts left")
        result = grade(quiz, selected)
        passed = result.score >= quiz["pass_mark"]
        attempts = trainee["attempts"] + 1
        vid, version, now = principal.subject, trainee["v"] + 1, clock.now()
        if passed:
            state = T.TRAINEE_STATE_PASSED
        elif attempts >= quiz["max_attempts"]:
            state = T.TRAINEE_STATE_FAILED
        else:
            state = T.TRAINEE_STATE_ATTENDED
        update: dict = {"$set": {f"trainees.{vid}.state": state, f"trainees.{vid}.last_score": result.score,
                                 f"trainees.{vid}.best_score": max(result.score, trainee["best_score"])},
                        "$inc": {f"trainees.{vid}.v": 1, f"trainees.{vid}.attempts": 1}}
        events = [self.sessions.trainee_event(events_pb2.QuizAttempted(
            session_id=session.id, course_id=session.course_id, course_version=session.course["revision"],
            volunteer_id=vid, score=result.score, passed=passed), session, vid, version, principal.subject)]
        if passed:
            update["$set"][f"trainees.{vid}.passed_at"] = now
            update["$inc"]["passed_count"] = 1
            events.append(self.sessions.completion_event(session, vid, version, result.score, now, principal.subject))
        written = self.sessions.write(session, {"status": SCHEDULED,
                                                **trainee_guard(session, vid, T.TRAINEE_STATE_ATTENDED)},
                                      update, events)
        if written is None:
            current = self.sessions.load(session.district_id, session.id)
            if current.status != SCHEDULED:
                raise FailedPrecondition("the session is closed; quiz attempts are no longer accepted")
            raise Aborted("another attempt of yours was recorded at the same moment; reload the quiz")
        metrics.QUIZ_ATTEMPTS.labels("passed" if passed else "failed").inc()
        if passed:
            metrics.COMPLETIONS.labels("session").inc()
        return written, result, passed
