"""Audit history (django-simple-history) for the models people change: who, when,
what. Changes made through the admin carry the admin user; changes made through
the API (an API key, not a user) or by tasks carry none."""

from django.contrib.auth.base_user import AbstractBaseUser
from simple_history.models import HistoricalRecords


def _admin_user(instance=None, request=None, **kwargs):
    user = getattr(request, "user", None) if request is not None else None
    return user if isinstance(user, AbstractBaseUser) and user.is_authenticated else None


def audit_history(**options) -> HistoricalRecords:
    return HistoricalRecords(get_user=_admin_user, **options)
