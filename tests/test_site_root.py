"""The site's root and unknown pages: `/` leads to the admin (or its login), a
wrong address is a plain "Page not found" that names no URL of the project, and
the admin shows no "View site" link back to nowhere."""

import pytest
from django.contrib.auth.models import User
from django.test import override_settings


@pytest.mark.django_db
def test_root_sends_a_visitor_to_the_admin_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=%2Fadmin%2F"


@pytest.mark.django_db
def test_root_sends_a_signed_in_staff_user_to_the_admin(client):
    client.force_login(User.objects.create_user("ops", is_staff=True))
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


@pytest.mark.django_db
def test_root_sends_a_signed_in_non_staff_user_to_the_login(client):
    client.force_login(User.objects.create_user("someone", is_staff=False))
    response = client.get("/")
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
@override_settings(DEBUG=False)
def test_an_unknown_page_is_a_plain_not_found(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Page not found" in body
    assert "/admin/" in body
    # Django's debug page lists the URL patterns; this page lists none.
    assert "api/v1/" not in body
    assert "URLconf" not in body


@pytest.mark.django_db
def test_the_admin_has_no_view_site_link(admin_client):
    body = admin_client.get("/admin/").content.decode()
    assert "View site" not in body
