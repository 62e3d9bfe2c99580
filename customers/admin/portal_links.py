"""A customer's stored portal links in the admin (customers.portal_links): listed
on the customer's page (read-only, with a button revoking each one that still
works), and issued from "Issue a portal link…": read-only or managing the limits
the customer sets, for a named holder, for 1 to 90 days; the URL is shown once."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.core.admin_fields import moment_text
from billing.core.errors import InvalidRequest
from customers.models import PortalLink
from customers.portal_links import (
    LINK_DAYS_DEFAULT,
    LINK_DAYS_MOST,
    portal_link_create,
    portal_link_revoke,
)


class PortalLinkInline(admin.TabularInline):
    model = PortalLink
    fields = ["holder", "manage", "created_text", "expires_text", "created_by", "state"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("portal links")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("created at"))
    def created_text(self, link: PortalLink) -> str:
        return moment_text(link.created_at)

    @admin.display(description=_("expires at"))
    def expires_text(self, link: PortalLink) -> str:
        return moment_text(link.expires_at)

    @admin.display(description=_("state"))
    def state(self, link: PortalLink) -> str:
        if link.revoked_at is not None:
            return gettext("Revoked {moment}").format(moment=moment_text(link.revoked_at))
        if not link.works_at(timezone.now()):
            return gettext("Expired")
        url = reverse(
            "admin:customers_customer_portal_link_revoke", args=[link.customer_id, link.pk]
        )
        # The customer's change form holds this button: it posts the form (and its
        # CSRF token) to the revoke view instead of saving the customer.
        return format_html(
            '{} <button type="submit" class="button revoke-portal-link" formaction="{}" '
            'data-link="{}">{}</button>',
            gettext("Works"),
            url,
            link.pk,
            gettext("Revoke"),
        )


class PortalLinkIssueForm(forms.Form):
    manage = forms.BooleanField(
        label=_("May manage the limits"),
        required=False,
        help_text=_("Without it, the link only shows the customer's account."),
    )
    holder = forms.CharField(
        label=_("Holder"),
        required=False,
        max_length=PortalLink.HOLDER_MAX_LENGTH,
        help_text=_("Who the link is for, e.g. “Jane (CTO)”; required to manage limits."),
    )
    expires_in_days = forms.IntegerField(
        label=_("Works for (days)"),
        min_value=1,
        max_value=LINK_DAYS_MOST,
        initial=LINK_DAYS_DEFAULT,
    )


def portal_link_issue_view(model_admin, request, object_id):
    """The form issuing a stored link, then the link's URL, shown this once."""
    customer = model_admin.get_object(request, unquote(object_id))
    if customer is None:
        raise Http404("no such customer")
    if not model_admin.has_change_permission(request, customer):
        raise PermissionDenied
    form = PortalLinkIssueForm(request.POST or None)
    url = link = None
    if request.method == "POST" and form.is_valid():
        try:
            link, token = portal_link_create(
                customer=customer,
                manage=form.cleaned_data["manage"],
                holder=form.cleaned_data["holder"],
                expires_in_days=form.cleaned_data["expires_in_days"],
                created_by=request.user.get_username(),
                now=timezone.now(),
            )
        except InvalidRequest as refusal:
            for field, texts in refusal.admin_fields.items():
                for text in texts:
                    form.add_error(field if field in form.fields else None, text)
        else:
            url = request.build_absolute_uri(reverse("portal", args=[token]))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": gettext("Issue a portal link for {name}").format(name=customer.name),
        "opts": model_admin.opts,
        "original": customer,
        "form": form,
        "link": link,
        "portal_url": url,
        "expires_text": moment_text(link.expires_at) if link else "",
    }
    response = TemplateResponse(request, "admin/customers/customer/portal_link_issue.html", context)
    response["Referrer-Policy"] = "no-referrer"
    return response


def portal_link_revoke_view(model_admin, request, object_id, link_id):
    """Revoke one of the customer's links (POST), back to the customer's page."""
    customer = model_admin.get_object(request, unquote(object_id))
    if customer is None:
        raise Http404("no such customer")
    if not model_admin.has_change_permission(request, customer):
        raise PermissionDenied
    if request.method != "POST":
        raise PermissionDenied
    link = get_object_or_404(PortalLink, pk=link_id, customer=customer)
    portal_link_revoke(link=link, now=timezone.now())
    messages.success(
        request,
        gettext("The portal link of {holder} is revoked.").format(
            holder=link.holder or gettext("(no holder)")
        ),
    )
    return HttpResponseRedirect(
        reverse("admin:customers_customer_change", args=[customer.pk]) + "#portal_links-group"
    )
