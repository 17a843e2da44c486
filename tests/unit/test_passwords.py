"""Password hashes: OWASP's Argon2id parameters unless the test profile is chosen, old hashes
verify and ask for a rehash, an unknown login is checked against a hash of the same cost."""

import pytest
from argon2 import PasswordHasher

from services.registration import passwords


@pytest.fixture(autouse=True)
def owasp_after():
    yield
    passwords.use_profile("owasp")


def test_people_get_owasp_argon2id_and_a_test_suite_a_cheap_one():
    stored = passwords.hash_password("Wenming@2026")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.verify_password("Wenming@2026", stored)
    assert not passwords.verify_password("wenming@2026", stored)
    assert passwords.dummy_hash().startswith("$argon2id$v=19$m=19456,t=2,p=1$")

    passwords.use_profile(passwords.TEST_PROFILE)
    cheap = passwords.hash_password("Wenming@2026")
    assert cheap.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert passwords.dummy_hash().startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    # each profile takes the other's hashes for old ones: verified, then stored again
    assert passwords.verify_password("Wenming@2026", stored) and passwords.needs_rehash(stored)
    passwords.use_profile("owasp")
    assert passwords.verify_password("Wenming@2026", cheap) and passwords.needs_rehash(cheap)
    assert not passwords.needs_rehash(stored)


def test_other_argon2_parameters_and_old_scrypt_hashes_need_a_rehash():
    weaker = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("x")
    assert passwords.verify_password("x", weaker) and passwords.needs_rehash(weaker)
    assert passwords.needs_rehash("scrypt$16384$8$1$c2FsdA==$ZGlnZXN0")
    assert not passwords.verify_password("x", "not a hash")
