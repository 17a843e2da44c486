import datetime as dt

import pytest

from services.common.pii import (
    PiiVault, id_check_char, mask_name, mask_national_id, mask_phone, parse_national_id, phone_masks_ending,
    validate_mobile,
)

# GB 11643-1999's own worked example
SAMPLE = "11010519491231002X"


def test_check_digit_of_the_standard_example():
    assert id_check_char(SAMPLE[:17]) == "X"
    parsed = parse_national_id(SAMPLE.lower())
    assert parsed.birth_date == dt.date(1949, 12, 31) and not parsed.male and parsed.region_code == "110105"


@pytest.mark.parametrize("bad, reason", [
    ("110105194912310021", "check digit"),
    ("11010519491331002X", "birth date"),   # month 13
    ("11010530491231002X", "birth date"),   # year 3049
    ("1101051949123100", "18 characters"),
    ("01010519491231002X", "18 characters"),  # leading zero region
    ("11010519491231002Y", "18 characters"),
])
def test_invalid_id_numbers_say_why_without_repeating_the_number(bad, reason):
    with pytest.raises(ValueError) as err:
        parse_national_id(bad)
    assert reason in str(err.value) and bad not in str(err.value)


def test_mobile_numbers_are_normalized_and_checked():
    assert validate_mobile("+86 138-0013-8000") == "13800138000"
    for bad in ("12800138000", "1380013800", "abc"):
        with pytest.raises(ValueError):
            validate_mobile(bad)


def test_masks():
    assert mask_national_id(SAMPLE) == "110***********002X"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_name("张三") == "张*" and mask_name("欧阳娜娜") == "欧**娜"


def test_the_masks_ending_with_four_digits_cover_every_mobile_number_ending_so():
    masks = phone_masks_ending("5678")
    assert len(masks) == len(set(masks)) == 70
    for number in ("13012345678", "13812345678", "19999995678", "14700005678"):
        assert mask_phone(number) in masks
    assert mask_phone("13812345679") not in masks


def test_vault_round_trip_binds_district_and_field():
    vault = PiiVault(b"k" * 32, b"i" * 32)
    blob = vault.encrypt(SAMPLE, district_id="d1", field="volunteer.national_id")
    assert SAMPLE.encode() not in blob
    assert vault.decrypt(blob, district_id="d1", field="volunteer.national_id") == SAMPLE
    with pytest.raises(ValueError):
        vault.decrypt(blob, district_id="d2", field="volunteer.national_id")
    with pytest.raises(ValueError):
        PiiVault(b"z" * 32, b"i" * 32).decrypt(blob, district_id="d1", field="volunteer.national_id")
    assert vault.encrypt(SAMPLE, district_id="d1", field="f") != vault.encrypt(SAMPLE, district_id="d1", field="f")


def test_blind_index_is_stable_and_keyed():
    vault = PiiVault(b"k" * 32, b"i" * 32)
    a = vault.blind_index(SAMPLE, district_id="d1", field="national_id")
    assert a == vault.blind_index(SAMPLE, district_id="d1", field="national_id")
    assert a != vault.blind_index(SAMPLE, district_id="d2", field="national_id")
    assert a != PiiVault(b"k" * 32, b"j" * 32).blind_index(SAMPLE, district_id="d1", field="national_id")


def test_vault_refuses_equal_or_short_keys():
    with pytest.raises(ValueError):
        PiiVault(b"k" * 32, b"k" * 32)
    with pytest.raises(ValueError):
        PiiVault(b"k" * 16, b"i" * 32)
