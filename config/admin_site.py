"""The admin site: Django's, with sections that gather pages of several apps (or
part of one) under a heading of their own, as finance looks for them
(Accounting, Accounts), while their tables and URLs stay in the app that
owns them. A ModelAdmin joins a section with `admin_section = "<label>"`;
the section has its index page at /admin/<label>/ (no app has that label)."""

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

# Section label -> its heading.
SECTIONS = {"accounting": _("Accounting")}


def section_of(model_admin) -> str | None:
    return getattr(model_admin, "admin_section", None)


class BillingAdminSite(AdminSite):
    def get_app_list(self, request, app_label=None):
        """The apps' lists, each section's pages taken out of their app and
        listed under the section; with `app_label`, that app's or section's."""
        in_section = app_label in SECTIONS
        apps = super().get_app_list(request, None if in_section else app_label)
        sections: dict[str, list] = {}
        for app in apps:
            kept = []
            for model in app["models"]:
                section = section_of(self._registry.get(model["model"]))
                (sections.setdefault(section, []) if section in SECTIONS else kept).append(model)
            app["models"] = kept
        found = [app for app in apps if app["models"]]
        for label, models in sections.items():
            if app_label and label != app_label:
                continue
            found.append(
                {
                    "name": SECTIONS[label],
                    "app_label": label,
                    "app_url": reverse(f"{self.name}:section_{label}", current_app=self.name),
                    "has_module_perms": True,
                    "models": sorted(models, key=lambda m: m["name"]),
                }
            )
        if in_section:
            found = [app for app in found if app["app_label"] == app_label]
        return sorted(found, key=lambda app: str(app["name"]).lower())

    def get_urls(self):
        sections = [
            path(
                f"{label}/",
                self.admin_view(self.app_index),
                {"app_label": label},
                name=f"section_{label}",
            )
            for label in SECTIONS
        ]
        return sections + super().get_urls()


class BillingAdminConfig(AdminConfig):
    """django.contrib.admin with BillingAdminSite as `admin.site`."""

    default_site = "config.admin_site.BillingAdminSite"
