"""The admin in each user's own language (English, French or German): chosen on
the "Language" page linked from every admin page's header (or by a superuser on
the user's page), kept in config.models.UserLanguage, and activated for each of
that user's requests by UserLanguageMiddleware (config.site_middleware.SITE_ONLY:
never for the API). A visitor (the login page, the lockout page after too many
failed logins) reads it in the browser's language when it is one of the three.
The language sets Django's own words and ours (locale/), the dates, and how
amounts are typed and shown (common.typed_numbers)."""

import functools

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from common.customer_text import ADMIN_LANGUAGES as LANGUAGES
from common.customer_text import DEFAULT_LANGUAGE
from common.customer_text import language as supported_language
from common.outage import database_unavailable
from config.models import UserLanguage


def user_language(user) -> str | None:
    """The language an admin user chose (English when none); None for anyone
    else (a visitor, the login page), who gets the browser's (visitor_language)."""
    if not (user.is_authenticated and user.is_staff):
        return None
    chosen = UserLanguage.objects.filter(user=user).values_list("language", flat=True).first()
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


def visitor_language(request) -> str:
    """The language of a page before logging in: the browser's (Accept-Language)
    when it is English, French or German (fr-CA reads French), else English. It
    tells nothing about the account being logged into."""
    chosen = supported_language(translation.get_language_from_request(request))
    # A customer's language the admin is not written in (Spanish, Japanese) reads English.
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


def user_language_set(*, user, language: str) -> UserLanguage:
    """Keep `language` as the user's admin language (one row a user)."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown admin language {language!r}")
    row, _created = UserLanguage.objects.update_or_create(
        user=user, defaults={"language": language}
    )
    return row


@functools.cache
def admin_prefix() -> str:
    """Where the admin's pages are: '/admin/'."""
    return reverse("admin:index")


class UserLanguageMiddleware:
    """Every admin page an admin user asks for, in the language they chose, and only
    that request: the language is put back when the response is made (the next
    request on this thread may be an API call, which stays in the default)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # The admin only: the portal is in its customer's language, whoever opens it.
        if not request.path_info.startswith(admin_prefix()):
            return self.get_response(request)
        try:
            language = user_language(request.user)
        except Exception as error:
            if not database_unavailable(error):
                raise
            # The default language: the view's own query meets the outage, and
            # common.outage's exception hook answers its page.
            language = None
        if language is None:
            language = visitor_language(request)
        with translation.override(language):
            request.LANGUAGE_CODE = language
            response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        return response


class LanguageForm(forms.Form):
    language = forms.ChoiceField(choices=list(LANGUAGES.items()), widget=forms.RadioSelect)


def language_view(request):
    """The admin user's own language: the page the header's "Language" link opens."""
    current = user_language(request.user) or DEFAULT_LANGUAGE
    form = LanguageForm(request.POST or None, initial={"language": current})
    if request.method == "POST" and form.is_valid():
        chosen = form.cleaned_data["language"]
        user_language_set(user=request.user, language=chosen)
        with translation.override(chosen):
            messages.success(
                request, _("The admin is now in {language}.").format(language=LANGUAGES[chosen])
            )
        return redirect("admin:index")
    context = {
        **admin.site.each_context(request),
        "title": _("Language"),
        "form": form,
    }
    return TemplateResponse(request, "admin/user_language.html", context)
