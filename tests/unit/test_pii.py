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


def test_a_keyring_encrypts_with_the_newest_and_decrypts_every_version():
    import base64

    from services.common.config import Env, pii_vault

    k1, k2, i1, i2 = (base64.b64encode(bytes([n]) * 32).decode() for n in (1, 2, 3, 4))
    old = pii_vault(Env({"PII_ENCRYPTION_KEY": k1, "PII_BLIND_INDEX_KEY": i1}))  # earlier releases: v1
    new = pii_vault(Env({"PII_ENCRYPTION_KEYS": f"v2:{k2},v1:{k1}", "PII_BLIND_INDEX_KEYS": f"v1:{i1},v2:{i2}"}))
    blob = old.encrypt(SAMPLE, district_id="d1", field="f")
    assert blob[0] == 1 and not new.is_current(blob)
    assert new.decrypt(blob, district_id="d1", field="f") == SAMPLE
    fresh = new.encrypt(SAMPLE, district_id="d1", field="f")
    assert fresh[0] == 2 and new.is_current(fresh)
    with pytest.raises(ValueError, match="not in the keyring"):
        old.decrypt(fresh, district_id="d1", field="f")
    # the index a write stores is the newest; a lookup asks for every version, newest first
    assert new.blind_indexes(SAMPLE, district_id="d1", field="f") == [
        new.blind_index(SAMPLE, district_id="d1", field="f"), old.blind_index(SAMPLE, district_id="d1", field="f")]


@pytest.mark.parametrize(("environ", "problem"), [
    ({"PII_BLIND_INDEX_KEY": "aWk="}, "PII_ENCRYPTION_KEYS is required"),
    ({"PII_ENCRYPTION_KEYS": "2:abc", "PII_BLIND_INDEX_KEY": "aWk="}, "v<version>:<base64 key>"),
    ({"PII_ENCRYPTION_KEYS": "v1:" + "A" * 43 + "=,v1:" + "B" * 43 + "=", "PII_BLIND_INDEX_KEYS": "v1:" + "C" * 43 + "="},
     "appears twice"),
    ({"PII_ENCRYPTION_KEYS": "v1:" + "A" * 43 + "=", "PII_BLIND_INDEX_KEYS": "v2:" + "A" * 43 + "="}, "must differ"),
    ({"PII_ENCRYPTION_KEYS": "v1:AAAA", "PII_BLIND_INDEX_KEYS": "v1:" + "C" * 43 + "="}, "must be 32 bytes"),
])
def test_bad_keyrings_stop_the_start_saying_why(environ, problem):
    from services.common.config import Env, pii_vault

    env = Env(environ)
    assert pii_vault(env) is None
    assert any(problem in p for p in env.problems), env.problems
