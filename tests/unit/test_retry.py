"""The one back-off policy and bounded retry (services/common/retry.py), with a fake wait."""

from __future__ import annotations

import random

import pytest

from services.common.errors import Aborted, FailedPrecondition
from services.common.retry import Backoff, Retry, until_written

DOUBLING = Backoff(first_seconds=0.5, max_seconds=4.0)


def test_backoff_doubles_up_to_its_cap_with_full_jitter():
    random.seed(7)
    for failures, bound in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (200, 4.0)]:
        waits = [DOUBLING.delay(failures) for _ in range(200)]
        assert 0 <= min(waits) < bound / 4 and bound * 3 / 4 < max(waits) <= bound


def test_retry_gives_up_after_its_attempts_waiting_between_them():
    waited: list[float] = []
    assert list(Retry(max_attempts=4, backoff=DOUBLING).attempts(wait=waited.append)) == [0, 1, 2, 3]
    assert len(waited) == 3 and waited[0] <= 0.5 and waited[2] <= 2.0


def test_retry_ends_before_a_wait_would_pass_its_deadline():
    retry = Retry(max_attempts=None, backoff=Backoff(first_seconds=10.0, max_seconds=10.0), deadline_seconds=0.0)
    assert list(retry.attempts(wait=pytest.fail)) == [0]


def test_retry_ends_when_the_process_is_stopping():
    assert list(Retry(max_attempts=5, backoff=DOUBLING).attempts(wait=lambda seconds: True)) == [0]


def test_retry_needs_a_bound():
    with pytest.raises(ValueError, match="needs a bound"):
        Retry(max_attempts=None, backoff=DOUBLING)


INSTANT = Retry(max_attempts=3, backoff=Backoff(first_seconds=0.0, max_seconds=0.0))


def test_a_guarded_move_is_tried_again_until_its_write_holds():
    outcomes = iter([None, None, "written"])  # two writes lost to other writers, then one holds
    assert until_written(INSTANT, lambda: next(outcomes), "kept changing") == "written"


def test_a_guarded_move_that_keeps_losing_is_aborted_with_the_callers_words():
    tries: list[int] = []
    with pytest.raises(Aborted, match="预约的人较多"):
        until_written(INSTANT, lambda: tries.append(1), "预约的人较多，请稍后再试")
    assert len(tries) == 3


def test_a_refusal_of_the_rules_ends_the_move_at_once():
    tries: list[int] = []

    def refused():
        tries.append(1)
        raise FailedPrecondition("名额已满")

    with pytest.raises(FailedPrecondition):
        until_written(INSTANT, refused, "kept changing")
    assert tries == [1]
