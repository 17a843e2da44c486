import time

from services.common.checkin import PASS_LENGTH, UNAMBIGUOUS, CheckinCodes
from services.common.clock import Clock


def test_clock_follows_the_offset_file(tmp_path):
    offset = tmp_path / "offset"
    clock = Clock(str(offset))
    before = clock.now()
    offset.write_text("3600")
    assert 3599 <= (clock.now() - before).total_seconds() <= 3601 + 1
    offset.write_text("garbage")  # a half-written file keeps the previous offset
    time.sleep(0.01)
    assert (clock.now() - before).total_seconds() >= 3599
    assert abs((Clock(None).now() - before).total_seconds()) < 5


def test_checkin_codes_rotate_and_bind_the_subject(tmp_path, monkeypatch):
    offset = tmp_path / "offset"
    offset.write_text("0")
    clock = Clock(str(offset))
    monkeypatch.setattr("services.common.checkin.clock", clock)
    codes = CheckinCodes(b"k" * 32, period_seconds=60)
    code, valid_until = codes.issue("order", "ord_1")
    assert codes.verify("order", "ord_1", code) and codes.verify("order", "ord_1", code.lower())
    assert not codes.verify("order", "ord_2", code)          # another order
    assert not codes.verify("activity", "ord_1", code)       # another purpose
    assert not CheckinCodes(b"j" * 32).verify("order", "ord_1", code)  # forged with another key
    offset.write_text("60")                                   # next window: still accepted
    time.sleep(0.01)
    assert codes.verify("order", "ord_1", code)
    offset.write_text("180")                                  # long expired
    time.sleep(0.01)
    assert not codes.verify("order", "ord_1", code)
    assert valid_until > time.time() - 1


def test_passes_are_short_stable_and_bound_to_holder_subject_and_key():
    codes = CheckinCodes(b"k" * 32)
    code = codes.pass_code("activity-pass", "act_1", "res_1")
    assert len(code) == PASS_LENGTH and set(code) <= set(UNAMBIGUOUS)
    assert code == codes.pass_code("activity-pass", "act_1", "res_1")  # does not rotate
    others = {codes.pass_code("activity-pass", "act_1", "res_2"), codes.pass_code("activity-pass", "act_2", "res_1"),
              codes.pass_code("order-pass", "act_1", "res_1"),
              CheckinCodes(b"j" * 32).pass_code("activity-pass", "act_1", "res_1")}
    assert code not in others and len(others) == 4
