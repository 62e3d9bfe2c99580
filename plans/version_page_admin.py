"""What the pages of a plan version besides its change page (price history,
compare with published, try prices) share: the version, read only by whoever
may view plan versions, and the page's context."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse

from plans.models import PlanVersion


class VersionPageMixin:
    """For a PlanVersion ModelAdmin."""

    def viewable_version(self, request, object_id) -> PlanVersion:
        version = self.get_object(request, object_id)
        if version is None:
            raise Http404("No such plan version.")
        if not self.has_view_permission(request, version):
            raise PermissionDenied
        return version

    def render_version_page(
        self, request, version: PlanVersion, template: str, title: str, **values
    ):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": version,
            "title": title,
            **values,
        }
        return TemplateResponse(request, f"admin/plans/planversion/{template}", context)
