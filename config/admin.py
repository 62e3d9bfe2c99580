"""The user's page in the admin, with the user's admin language
(config.user_language), which a superuser can set there; django-celery-beat's pages
with our labels (config.beat_admin)."""

from django.contrib import admin
from django.contrib.auth import admin as auth_admin  # registers the User's page on import
from django.contrib.auth import get_user_model

from config import beat_admin
from config.models import UserLanguage

User = get_user_model()


class UserLanguageInline(admin.StackedInline):
    model = UserLanguage
    can_delete = False
    max_num = 1
    extra = 1


class UserAdmin(auth_admin.UserAdmin):
    inlines = [*auth_admin.UserAdmin.inlines, UserLanguageInline]


# django.contrib.auth.admin's page for the User, with the language added.
admin.site.unregister(User)
admin.site.register(User, UserAdmin)

beat_admin.register()
