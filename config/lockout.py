"""The admin login's answer while django-axes locks a login out (AXES_LOCKOUT_CALLABLE)."""

from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from django.contrib import admin
from django.shortcuts import render
from django.utils.translation import gettext as _


def admin_lockout_response(request, original_response, credentials):
    """429 and the login page's look, saying why the login is refused, for how long and
    who can lift it; Retry-After is the cool-off. The password is not checked at all
    while the lock lasts, so this page says nothing about whether it was right."""
    cool_off = get_cool_off(request)
    context = {
        **admin.site.each_context(request),
        "title": _("Login locked"),
        "username": get_client_username(request, credentials) or "",
        "failure_limit": get_failure_limit(request, credentials),
        "cool_off_minutes": int(cool_off.total_seconds() // 60) if cool_off else None,
    }
    response = render(request, "admin/login_locked.html", context, status=429)
    if cool_off:
        response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response
