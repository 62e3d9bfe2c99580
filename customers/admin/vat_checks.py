"""A VAT number's checks on the admin pages of customers and billing entities:
the latest check shown read-only, and a button "Check VAT number with VIES" for
whoever may record checks (customers.add_vatcheck: Finance), which records one
(customers.vat_checks) and says the outcome in a message."""

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from common.admin_fields import moment_text
from common.errors import BillingError
from customers.models import Customer, VatCheck
from customers.selectors import vat_check_latest
from customers.vat_checks import vat_id_check

CHECK_PERMISSION = "customers.add_vatcheck"
OUTCOME_WORDS = {
    "valid": _("valid"),
    "invalid": _("invalid"),
    "unavailable": _("unavailable (no answer)"),
}


def may_check_vat(user) -> bool:
    return user.has_perm(CHECK_PERMISSION)


def _holder(obj) -> dict:
    return {"customer": obj} if isinstance(obj, Customer) else {"billing_entity": obj}


def _check_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_vat_check", args=[obj.pk])


def vat_check_html(obj) -> str:
    """The latest check of the object's VAT number (outcome, consultation id, when,
    the service's error), and the check button when the page's user may check
    (render_change_form sets `may_check_vat` on the object)."""
    latest = vat_check_latest(**_holder(obj)) if obj.pk else None
    if latest is None:
        parts = [gettext("Not checked yet.")]
    else:
        parts = [
            gettext("{vat_id}: {outcome}, {when}").format(
                vat_id=latest.vat_id,
                outcome=OUTCOME_WORDS[latest.outcome],
                when=moment_text(latest.checked_at),
            )
        ]
        if latest.consultation_id:
            parts.append(gettext("Consultation id: {id}").format(id=latest.consultation_id))
        if latest.name:
            parts.append(latest.name)
        if latest.error:
            parts.append(latest.error)
    line = '<span class="vat-check-line">{}</span><br>'
    shown = format_html_join("", line, [(part,) for part in parts])
    if not getattr(obj, "may_check_vat", False):
        return shown
    return format_html(
        '{}<button type="submit" class="button" id="vat-check" formaction="{}" '
        "formnovalidate>{}</button>",
        shown,
        _check_url(obj),
        gettext("Check VAT number with VIES"),
    )


def outcome_message(check: VatCheck) -> tuple[int, str]:
    """The message level and words of a check just recorded."""
    if check.valid:
        return messages.SUCCESS, gettext(
            "{vat_id} is valid according to VIES (consultation id {id})."
        ).format(vat_id=check.vat_id, id=check.consultation_id or "—")
    if check.valid is False:
        return messages.WARNING, gettext("{vat_id} is not valid according to VIES.").format(
            vat_id=check.vat_id
        )
    return messages.WARNING, gettext(
        "VIES could not answer for {vat_id} ({error}): the check is recorded as "
        "unavailable; try again later."
    ).format(vat_id=check.vat_id, error=check.error)


def vat_check_view(model_admin, request, object_id):
    """POST: checks the VAT number of the customer or billing entity, records the
    answer and goes back to its page with the outcome as a message."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    obj = model_admin.get_object(request, unquote(object_id))
    if obj is None:
        raise Http404("no such object")
    if not may_check_vat(request.user) or not model_admin.has_view_permission(request, obj):
        raise PermissionDenied
    try:
        check = vat_id_check(**_holder(obj), now=timezone.now())
    except BillingError as refused:
        messages.error(request, refused.words)
    else:
        level, words = outcome_message(check)
        messages.add_message(request, level, words)
    return redirect(
        reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    )
