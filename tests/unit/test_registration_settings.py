from services.common.config import Env
from services.registration.app import extra_settings


def test_access_tokens_last_15_minutes_and_refresh_tokens_7_days_unless_configured():
    defaults = extra_settings(Env({}))
    assert (defaults["access_token_ttl_seconds"], defaults["refresh_token_ttl_seconds"]) == (900, 7 * 24 * 3600)
    env = Env({"ACCESS_TOKEN_TTL_SECONDS": "30", "REFRESH_TOKEN_TTL_SECONDS": "3600"})
    assert extra_settings(env)["refresh_token_ttl_seconds"] == 3600
    assert "ACCESS_TOKEN_TTL_SECONDS=30 must be at least 60" in env.problems


def test_passwords_are_hashed_at_owasp_cost_unless_a_test_suite_says_otherwise():
    assert extra_settings(Env({}))["password_hashing"] == "owasp"
    assert extra_settings(Env({"PASSWORD_HASHING": "fast-for-tests"}))["password_hashing"] == "fast-for-tests"
    env = Env({"PASSWORD_HASHING": "md5" + "x" * 100})
    extra_settings(env)
    assert "PASSWORD_HASHING='md5xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' must be one of owasp, fast-for-tests" \
        in env.problems
