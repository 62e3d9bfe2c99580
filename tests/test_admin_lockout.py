"""Admin logins lock out after repeated failures (django-axes): AXES_FAILURE_LIMIT (5)
wrong passwords for one username from one address refuse even the right one, with a
page that says why, until the cool-off (15 minutes) passes or `axes_reset` lifts it."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
PASSWORD = "a-long-admin-password-1"
ATTACKER = "203.0.113.7"


@pytest.fixture(autouse=True)
def _fast_password_hashes(settings):
    """Each refused login still checks the password until the lock: with the default
    hasher these tests would spend a minute hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_user(db):
    return User.objects.create_superuser("admin", "admin@example.com", PASSWORD)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def log_in(password: str, *, address: str = ATTACKER, username: str = "admin"):
    client = Client(REMOTE_ADDR=address)
    response = client.post(
        "/admin/login/?next=/admin/", {"username": username, "password": password}
    )
    return client, response


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_thirty_wrong_passwords_then_the_right_one_is_refused(admin_user, frozen):
    # when: 30 wrong passwords
    wrong = [log_in(f"guess-{n}")[1] for n in range(30)]

    # then: the first 4 get the login form back, from the 5th on the login is locked
    assert [r.status_code for r in wrong[:4]] == [200] * 4
    assert "Please enter the correct username and password" in wrong[0].text
    assert [r.status_code for r in wrong[4:]] == [429] * 26

    # when: the right password, from the same address
    client, response = log_in(PASSWORD)

    # then: refused, with a page that says why and for how long
    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    assert "Login locked after 5 failed attempts for “admin” from your address." in response.text
    assert "Try again in 15 minutes" in response.text
    assert not logged_in(client)
    assert client.get("/admin/").status_code == 302


def test_the_lock_is_per_username_and_address(admin_user, frozen):
    # given: the admin locked out at the attacker's address
    for n in range(5):
        log_in(f"guess-{n}")
    assert log_in(PASSWORD)[1].status_code == 429

    # when: the admin logs in from another address
    client, response = log_in(PASSWORD, address="198.51.100.20")

    # then
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert logged_in(client)


def test_the_lock_ends_after_the_cool_off(admin_user, frozen):
    # given: locked out, the last attempt at NOW
    for n in range(5):
        log_in(f"guess-{n}")

    # when: a second before the cool-off ends
    frozen.move_to(NOW + timedelta(minutes=14, seconds=59))
    _, early = log_in(PASSWORD)

    # then: refused, and the wait starts again from this attempt
    assert early.status_code == 429
    frozen.move_to(NOW + timedelta(minutes=15, seconds=1))
    assert log_in(PASSWORD)[1].status_code == 429

    # when: the cool-off has passed since the last attempt
    frozen.move_to(NOW + timedelta(minutes=30, seconds=2))
    client, response = log_in(PASSWORD)

    # then
    assert response.status_code == 302
    assert logged_in(client)


def test_axes_reset_lifts_the_lock(admin_user, frozen):
    # given: locked out
    for n in range(5):
        log_in(f"guess-{n}")
    assert log_in(PASSWORD)[1].status_code == 429

    # when
    call_command("axes_reset", stdout=StringIO())

    # then
    assert not AccessAttempt.objects.exists()
    client, response = log_in(PASSWORD)
    assert response.status_code == 302
    assert logged_in(client)


def test_a_success_clears_the_failures_before_it(admin_user, frozen):
    # given: 4 wrong passwords, then the right one
    for n in range(4):
        log_in(f"guess-{n}")
    assert log_in(PASSWORD)[1].status_code == 302

    # when: 4 more wrong ones, then the right one
    wrong = [log_in(f"again-{n}")[1].status_code for n in range(4)]
    _, response = log_in(PASSWORD)

    # then: never locked
    assert wrong == [200] * 4
    assert response.status_code == 302
