from services.common.config import Env
from services.points.app import extra_settings


def test_recovery_runs_every_2_seconds_and_a_crash_step_must_be_one_there_is():
    assert extra_settings(Env({}))["recovery_interval_seconds"] == 2.0
    env = Env({"POINTS_CRASH_AT": "posting.applied"})
    extra_settings(env)
    assert env.problems == []
    env = Env({"POINTS_CRASH_AT": "posting.typo"})
    extra_settings(env)
    assert any(p.startswith("POINTS_CRASH_AT='posting.typo' is none of posting.journaled") for p in env.problems)


def test_points_does_not_start_without_the_font_its_pdfs_embed(tmp_path):
    env = Env({"CJK_FONT_PATH": str(tmp_path / "missing.ttc")})
    extra_settings(env)
    assert [p for p in env.problems if p.startswith("CJK_FONT_PATH=")]
    assert extra_settings(Env({}))["public_app_url"] == "http://127.0.0.1:8080/app"
