"""The limits a customer set, in the admin, for finance and support: the same
section the portal shows (customers.portal_limits.limits_section: each limit with
what was spent against it, the thresholds, where alerts go, the history) and the
same form, amounts typed in the admin user's convention; a change is saved through
customers.limits.limits_set under the user's name, through "admin", and recorded
in the history like the customer's own."""

from datetime import UTC, datetime

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import get_language, gettext

from billing.usage.customer_limits import limits_save
from common.customer_text import CustomerText, customer_zone, language
from common.errors import InvalidRequest
from customers.limits import limits_stored
from customers.limits_form import LimitsForms
from customers.models import CustomerLimitChange
from customers.portal_limits import limits_section, meter_choices


def customer_limits_view(model_admin, request, object_id):
    """GET: the customer's limits and their history, with the form to whoever may
    change customers. POST: saved, back here with a message; refused, the page
    again with the errors on their fields, nothing changed."""
    customer = model_admin.get_object(request, unquote(object_id))
    if customer is None:
        raise Http404("no such customer")
    if not model_admin.has_view_permission(request, customer):
        raise PermissionDenied
    may_change = model_admin.has_change_permission(request, customer)
    # The admin user's language, the customer's time zone.
    write = CustomerText(language(get_language()), customer_zone(customer))
    now = datetime.now(UTC)
    forms = None
    if request.method == "POST":
        if not may_change:
            raise PermissionDenied
        forms = LimitsForms(
            request.POST,
            stored=limits_stored(customer),
            currency=customer.currency,
            meters=meter_choices(customer),
            language=write.locale,
        )
        if forms.is_valid():
            try:
                change = limits_save(
                    customer=customer,
                    document=forms.document(),
                    by=request.user.get_username(),
                    via=CustomerLimitChange.VIA_ADMIN,
                    now=now,
                )
            except InvalidRequest as refusal:
                forms.refused(refusal)
            else:
                if change is None:
                    messages.info(request, gettext("Nothing to save: the limits are as they were."))
                else:
                    messages.success(request, gettext("The limits are saved."))
                return HttpResponseRedirect(request.path)
    section = limits_section(customer, write=write, now=now, manage=may_change, forms=forms)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": gettext("Limits set by {name}").format(name=customer.name),
        "opts": model_admin.opts,
        "original": customer,
        "limits": section,
        "currency": customer.currency,
        "zone": str(customer_zone(customer)),
        "form_action": request.path,
        "customer_url": reverse("admin:customers_customer_change", args=[customer.pk]),
    }
    status = 400 if forms is not None else 200
    return TemplateResponse(request, "admin/customers/customer/limits.html", context, status=status)
