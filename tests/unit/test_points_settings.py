import base64

from services.common.config import Env
from services.points.app import extra_settings

# 爱心商家' contact numbers are encrypted: points needs the personal-data keys
KEYS = {"PII_ENCRYPTION_KEYS": "v1:" + base64.b64encode(b"e" * 32).decode(),
        "PII_BLIND_INDEX_KEYS": "v1:" + base64.b64encode(b"i" * 32).decode()}


def test_recovery_runs_every_2_seconds_and_a_crash_step_must_be_one_there_is():
    assert extra_settings(Env(KEYS))["recovery_interval_seconds"] == 2.0
    env = Env({**KEYS, "POINTS_CRASH_AT": "posting.applied"})
    extra_settings(env)
    assert env.problems == []
    env = Env({**KEYS, "POINTS_CRASH_AT": "posting.typo"})
    extra_settings(env)
    assert any(p.startswith("POINTS_CRASH_AT='posting.typo' is none of posting.journaled") for p in env.problems)


def test_points_needs_the_personal_data_keys_for_merchants_contact_numbers():
    env = Env({})
    extra_settings(env)
    assert any(p.startswith("PII_ENCRYPTION_KEYS is required") for p in env.problems)


def test_points_does_not_start_without_the_font_its_pdfs_embed(tmp_path):
    env = Env({"CJK_FONT_PATH": str(tmp_path / "missing.ttc")})
    extra_settings(env)
    assert [p for p in env.problems if p.startswith("CJK_FONT_PATH=")]
    assert extra_settings(Env({}))["public_app_url"] == "http://127.0.0.1:8080/app"
