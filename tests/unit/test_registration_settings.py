from services.common.config import Env
from services.registration.app import extra_settings


def test_access_tokens_last_15_minutes_and_refresh_tokens_7_days_unless_configured():
    defaults = extra_settings(Env({}))
    assert (defaults["access_token_ttl_seconds"], defaults["refresh_token_ttl_seconds"]) == (900, 7 * 24 * 3600)
    env = Env({"ACCESS_TOKEN_TTL_SECONDS": "30", "REFRESH_TOKEN_TTL_SECONDS": "3600"})
    assert extra_settings(env)["refresh_token_ttl_seconds"] == 3600
    assert "ACCESS_TOKEN_TTL_SECONDS=30 must be at least 60" in env.problems
