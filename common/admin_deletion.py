"""Deleting what is in use, in the admin: no Delete button where the object
stays, and its delete page (a bookmarked or typed URL, the list's "delete
selected") says why in words, for every role, superusers included: "12
customers are on Pro v1: archive it instead", never "your account doesn't have
permission" nor a bare 403."""

from django.contrib.admin.utils import unquote
from django.template.response import TemplateResponse
from django.utils.translation import gettext

REFUSED_TEMPLATE = "admin/delete_refused.html"


class RefusedDeletionMixin:
    """A ModelAdmin whose objects may be refused deletion while in use.
    `deletion_refusal(obj)` says why in one sentence (what to do instead), or
    None when the object may go."""

    def deletion_refusal(self, obj) -> str | None:
        return None

    def has_delete_permission(self, request, obj=None):
        if obj is not None and self.deletion_refusal(obj):
            return False
        return super().has_delete_permission(request, obj)

    def delete_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        refusal = self.deletion_refusal(obj) if obj is not None else None
        if refusal and self.has_view_permission(request, obj):
            opts = self.model._meta
            context = {
                **self.admin_site.each_context(request),
                "title": gettext("Cannot delete {object}").format(object=obj),
                "subtitle": None,
                "opts": opts,
                "object": obj,
                "reasons": [refusal],
            }
            # 409: the request is understood, the object's state refuses it.
            return TemplateResponse(request, REFUSED_TEMPLATE, context, status=409)
        return super().delete_view(request, object_id, extra_context)

    def get_deleted_objects(self, objs, request):
        """The list's "delete selected" names what stays and why, instead of a
        permission the user lacks or a list of protected rows."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        reasons = [reason for reason in map(self.deletion_refusal, objs) if reason]
        if reasons:
            return deleted, counts, set(), reasons
        return deleted, counts, perms_needed, protected
