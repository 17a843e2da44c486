"""Training's pure rules (no servers): calendar arithmetic, rotation standing, quiz grading."""

from __future__ import annotations

import datetime as dt

import pytest

from services.common.errors import InvalidArgument
from services.common.validation import Validator
from services.training.dates import add_months, add_years, parse_date
from services.training.quiz import check_against, grade, read_answers
from services.training.rotation import DONE, DUE, OVERDUE, evaluate
from wenming.training.v1 import training_pb2 as pb

UTC = dt.UTC
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def test_months_keep_the_day_or_take_the_months_last():
    assert add_months(dt.datetime(2026, 1, 31, tzinfo=UTC), 1) == dt.datetime(2026, 2, 28, tzinfo=UTC)
    assert add_months(dt.datetime(2024, 2, 29, tzinfo=UTC), 12) == dt.datetime(2025, 2, 28, tzinfo=UTC)
    assert add_months(dt.datetime(2026, 11, 5, tzinfo=UTC), 3) == dt.datetime(2027, 2, 5, tzinfo=UTC)
    assert add_months(dt.datetime(2026, 3, 5, tzinfo=UTC), -3) == dt.datetime(2025, 12, 5, tzinfo=UTC)
    assert add_years(dt.datetime(2021, 6, 15, tzinfo=UTC), 5) == dt.datetime(2026, 6, 15, tzinfo=UTC)


@pytest.mark.parametrize("value, ok", [("2024-02-29", True), ("2023-02-29", False), ("2024/01/01", False),
                                       ("", False)])
def test_dates_are_calendar_days(value, ok):
    v = Validator()
    parsed = parse_date(v, "completed_on", value)
    assert (parsed is not None, v.ok()) == (ok, ok)


@pytest.mark.parametrize("last, start, expected", [
    (dt.datetime(2025, 6, 15, tzinfo=UTC), dt.date(2020, 1, 1), (DONE, dt.datetime(2030, 6, 15, tzinfo=UTC))),
    # lapses within the 90-day notice period
    (dt.datetime(2021, 8, 1, tzinfo=UTC), dt.date(2020, 1, 1), (DUE, dt.datetime(2026, 8, 1, tzinfo=UTC))),
    # trained long ago: due one cycle after the plan's start, which has passed
    (dt.datetime(2019, 1, 1, tzinfo=UTC), dt.date(2020, 1, 1), (OVERDUE, dt.datetime(2025, 1, 1, tzinfo=UTC))),
    # same, but the plan started recently: still due
    (dt.datetime(2019, 1, 1, tzinfo=UTC), dt.date(2024, 1, 1), (DUE, dt.datetime(2029, 1, 1, tzinfo=UTC))),
    (None, dt.date(2020, 1, 1), (OVERDUE, dt.datetime(2025, 1, 1, tzinfo=UTC))),
    (None, dt.date(2024, 3, 1), (DUE, dt.datetime(2029, 3, 1, tzinfo=UTC))),
])
def test_rotation_standing(last, start, expected):
    assert evaluate(5, 90, start, last, NOW) == expected


QUIZ = {"questions": [{"question_id": "q1", "options": ["a", "b", "c"], "correct_options": [1]},
                      {"question_id": "q2", "options": ["a", "b", "c"], "correct_options": [0, 2]},
                      {"question_id": "q3", "options": ["a", "b"], "correct_options": [0]}],
        "pass_mark": 60, "max_attempts": 3}


def _answers(**picked) -> list[pb.QuizAnswer]:
    return [pb.QuizAnswer(question_id=q, selected_options=options) for q, options in picked.items()]


def test_grading_wants_exactly_the_right_options_and_rounds_down():
    answers = _answers(q1=[1], q2=[0])  # q2 half right is wrong; q3 unanswered is wrong
    v = Validator()
    result = grade(QUIZ, read_answers(v, answers))
    assert v.ok() and (result.correct, result.questions, result.score) == (1, 3, 33)
    assert grade(QUIZ, read_answers(Validator(), _answers(q1=[1], q2=[2, 0], q3=[0]))).score == 100


def test_answers_outside_the_quiz_are_named():
    answers = _answers(q1=[3], q9=[0])
    v = Validator()
    check_against(v, QUIZ, answers, read_answers(v, answers))
    with pytest.raises(InvalidArgument) as caught:
        v.check()
    assert [f for f, _ in caught.value.violations] == ["answers[0].selected_options[0]", "answers[1].question_id"]
