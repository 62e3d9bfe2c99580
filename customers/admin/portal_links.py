"""A customer's stored portal links in the admin (customers.portal_links): listed
on the customer's page (read-only, with a button revoking each one that still
works: it posts the customer's form, with its CSRF token, to the revoke view, so
that the list is no inline formset every save of the customer must carry), and
issued from "Issue a portal link…": read-only or managing the limits the
customer sets, for a named holder, for 1 to 90 days; the URL is shown once."""

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from common.admin_fields import moment_text
from common.errors import InvalidRequest
from customers.models import PortalLink
from customers.portal_links import (
    LINK_DAYS_DEFAULT,
    LINK_DAYS_MOST,
    portal_link_create,
    portal_link_revoke,
)

# The links listed on a customer's page, newest first.
LINKS_SHOWN = 20


def portal_link_rows(customer, *, now) -> list[dict]:
    """The customer's stored links as its page lists them (never their URLs): who
    for, whether they manage, when made and until when, by whom, and their state;
    a link that still works has the URL of its revoke button."""
    rows = []
    for link in customer.portal_links.order_by("-created_at", "-id")[:LINKS_SHOWN]:
        if link.revoked_at is not None:
            state = gettext("Revoked {moment}").format(moment=moment_text(link.revoked_at))
        elif not link.works_at(now):
            state = gettext("Expired")
        else:
            state = gettext("Works")
        rows.append(
            {
                "id": link.pk,
                "holder": link.holder or "—",
                "manage": link.manage,
                "created": moment_text(link.created_at),
                "expires": moment_text(link.expires_at),
                "created_by": link.created_by,
                "state": state,
                "revoke_url": reverse(
                    "admin:customers_customer_portal_link_revoke", args=[customer.pk, link.pk]
                )
                if link.works_at(now)
                else "",
            }
        )
    return rows


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
    if url:
        # The page holds a credential: never a referrer (the form's page may send
        # one: a browser posts a no-referrer page's form with "Origin: null", which
        # CSRF refuses).
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
