"""What the site keeps about its own users: the language each admin user reads
and types numbers in (config.user_language)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from common.customer_text import ADMIN_LANGUAGES as LANGUAGES
from common.customer_text import DEFAULT_LANGUAGE


class UserLanguage(models.Model):
    """An admin user's language: the admin's words (Django's and ours), its dates,
    and how amounts are typed and shown ('1,50' is 1.50 in French and German).
    No row: English."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="admin_language",
        verbose_name=_("user"),
    )
    language = models.CharField(
        max_length=8,
        choices=list(LANGUAGES.items()),
        default=DEFAULT_LANGUAGE,
        help_text=_(
            "The admin's words, dates and numbers: 1,234.50 (English), "
            "1 234,50 (Français), 1.234,50 (Deutsch)."
        ),
        verbose_name=_("language"),
    )

    class Meta:
        verbose_name = _("admin language")
        verbose_name_plural = _("admin languages")

    def __str__(self):
        return LANGUAGES.get(self.language, self.language)
