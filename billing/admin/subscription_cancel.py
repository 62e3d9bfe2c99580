"""Cancelling one subscription from its page: a form (now or at the end of the
period; for a prepaid commit, whether its access left expires or is
credited), then the shared confirmation page stating what happens, with the
cancel invoice's lines for a cancel now (usage_so_far and the proration
credit, what subscription_cancel invoices); only its confirmed POST cancels."""

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.invoicing.period_lines import UsageSoFar, usage_so_far
from billing.invoicing.unused_time import plan_unused_credit
from billing.models import Subscription
from billing.subscriptions import lifecycle
from common import customer_text
from common.admin_confirm import Confirmation, confirmation_page, is_confirmed
from common.admin_fields import moment_text
from common.admin_forms import money_text
from common.errors import BillingError
from wallets.commit_models import Commit
from wallets.commits import CREDIT, EXPIRE, access_left

NOW = "immediate"
PERIOD_END = "period_end"


class CancelForm(forms.Form):
    effective = forms.ChoiceField(widget=forms.RadioSelect, label=_("When"))
    commit_leftover = forms.ChoiceField(
        widget=forms.RadioSelect, required=False, label=_("What is left of the commit")
    )
    # Fixed when the confirmation page is shown: the figures it states are the ones invoiced.
    at = forms.DateTimeField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, subscription: Subscription, prepaid: Commit | None, **kwargs):
        super().__init__(*args, **kwargs)
        end = moment_text(subscription.current_period_end, _zone(subscription))
        self.fields["effective"].choices = [
            (PERIOD_END, gettext("At the end of the current period (%(end)s)") % {"end": end}),
            (NOW, gettext("Now")),
        ]
        if prepaid is None:
            del self.fields["commit_leftover"]
            return
        at = timezone.now()
        left = money_text(
            leftover_at(subscription, prepaid, usage_so_far(subscription, until=at)),
            prepaid.currency,
        )
        self.fields["commit_leftover"].label = gettext(
            "What is left of the commit (%(left)s of access), if cancelled now"
        ) % {"left": left, "currency": prepaid.currency}
        self.fields["commit_leftover"].choices = [
            (EXPIRE, gettext("expires (breakage)")),
            (CREDIT, gettext("is credited (a credit note on the commit's invoice)")),
        ]
        self.fields["commit_leftover"].initial = EXPIRE

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("effective") == NOW:
            if cleaned.get("at") is None:
                cleaned["at"] = timezone.now().replace(microsecond=0)
            if "commit_leftover" in self.fields and not cleaned.get("commit_leftover"):
                self.add_error("commit_leftover", gettext("Choose what is left of the commit."))
        return cleaned


def _zone(subscription: Subscription):
    """The customer's time zone: the moments of their subscription are read in it."""
    return customer_text.customer_zone(subscription.customer)


def active_commits(subscription: Subscription) -> tuple[Commit | None, Commit | None]:
    """The subscription's active prepaid commit and its active postpaid one."""
    commits = list(Commit.objects.filter(subscription=subscription, status=Commit.ACTIVE))
    prepaid = next((c for c in commits if c.prepaid), None)
    postpaid = next((c for c in commits if not c.prepaid), None)
    return prepaid, postpaid


def leftover_at(subscription: Subscription, prepaid: Commit, so_far: UsageSoFar) -> Decimal:
    """The commit's access left once the cancel invoice (its usage so far) has drawn."""
    draw = so_far.commit
    drawn = draw.drawn if draw is not None and draw.terms.id == prepaid.pk else Decimal(0)
    return access_left(prepaid, drawn=drawn)


def cancel_consequences(
    subscription: Subscription, cleaned: dict, prepaid: Commit | None, postpaid: Commit | None
) -> list[str]:
    if cleaned["effective"] == PERIOD_END:
        said = [
            gettext(
                "%(subscription)s ends with its current period, on %(end)s: the close bills "
                "the period's usage and no further fees."
            )
            % {
                "subscription": subscription,
                "end": moment_text(subscription.current_period_end, _zone(subscription)),
            }
        ]
        # The close ends the commits then (billing.invoicing.close: commits_end_early).
        if prepaid is not None:
            said.append(
                gettext("The commit ends with it: its access left then expires (breakage).")
            )
        if postpaid is not None:
            said.append(
                gettext("The postpaid commit ends with it: its true-up is invoiced by the close.")
            )
        return said
    at = cleaned["at"]
    currency = subscription.customer.currency
    with customer_text.speaking(subscription.customer.locale):  # the invoice's words
        so_far = usage_so_far(subscription, until=at)
        credit = lifecycle.cancel_credit_lines(subscription=subscription, at=at)
    # What subscription_cancel does with the credit (billing.invoicing.unused_time).
    unused = plan_unused_credit(subscription=subscription, credit=credit, at=at)
    lines = so_far.lines + list(unused.left)
    said = [
        gettext("%(subscription)s ends now (%(at)s); its features stop at once.")
        % {"subscription": subscription, "at": moment_text(at, _zone(subscription))},
    ]
    if lines:
        said.append(gettext("A cancel invoice is written with these lines (before tax):"))
        said += [f"{line.description}: {money_text(line.amount, currency)}" for line in lines]
    else:
        said.append(gettext("No cancel invoice: no usage so far to bill."))
    if unused.invoice is not None:
        said.append(
            gettext(
                "The unused time is a credit note against %(invoice)s, which charged it "
                "(before tax; tax is credited in proportion):"
            )
            % {"invoice": unused.invoice}
        )
        said += [
            f"{credit.description}: {money_text(-amount, currency)}"
            for _line, amount, credit in unused.parts
        ]
    if prepaid is not None:
        left = money_text(leftover_at(subscription, prepaid, so_far), prepaid.currency)
        words = {"left": left, "currency": prepaid.currency}
        if cleaned["commit_leftover"] == CREDIT:
            words["invoice"] = prepaid.invoice.number if prepaid.invoice else "—"
            said.append(
                gettext(
                    "The commit ends: the %(left)s of access left is credited by a "
                    "credit note on its invoice %(invoice)s."
                )
                % words
            )
        else:
            said.append(
                gettext(
                    "The commit ends: the %(left)s of access left expires "
                    "(breakage), nothing is credited."
                )
                % words
            )
    if postpaid is not None:
        said.append(gettext("The postpaid commit ends: its true-up is invoiced now."))
    return said


class CancelActions:
    """SubscriptionAdmin's Cancel… button: form -> confirmation -> subscription_cancel."""

    def get_urls(self):
        own = [
            path(
                "<int:subscription_id>/cancel/",
                self.admin_site.admin_view(self.cancel_view),
                name="billing_subscription_cancel",
            )
        ]
        return own + super().get_urls()

    def cancel_view(self, request, subscription_id: int):
        if not self.has_cancel_permission(request):
            raise PermissionDenied
        subscription = get_object_or_404(
            Subscription.objects.select_related("customer", "version__plan"), pk=subscription_id
        )
        back = reverse("admin:billing_subscription_change", args=[subscription.pk])
        if subscription.status not in Subscription.LIVE:
            messages.error(request, gettext("This subscription has ended already."))
            return redirect(back)
        prepaid, postpaid = active_commits(subscription)
        data = request.POST if request.method == "POST" else None
        form = CancelForm(data, subscription=subscription, prepaid=prepaid)
        if not form.is_valid():
            return self._cancel_form_page(request, subscription, form, postpaid)
        cleaned = form.cleaned_data
        if is_confirmed(request):
            return self._cancel_apply(request, subscription, cleaned, back)
        try:
            consequences = cancel_consequences(subscription, cleaned, prepaid, postpaid)
        except BillingError as error:
            messages.error(
                request, gettext("Nothing was changed: %(reason)s") % {"reason": error.words}
            )
            return redirect(back)
        hidden = {"effective": cleaned["effective"]}
        if cleaned.get("at") is not None and cleaned["effective"] == NOW:
            hidden["at"] = cleaned["at"].isoformat()
        if cleaned.get("commit_leftover"):
            hidden["commit_leftover"] = cleaned["commit_leftover"]
        confirmation = Confirmation(
            title=gettext("Cancel %(subscription)s?") % {"subscription": subscription},
            consequences=consequences,
            confirm_label=gettext("Yes, cancel the subscription"),
            cancel_url=back,
            hidden=hidden,
        )
        return confirmation_page(request, self, confirmation, obj=subscription)

    def _cancel_apply(self, request, subscription, cleaned: dict, back: str):
        now = cleaned["effective"] == NOW
        try:
            lifecycle.subscription_cancel(
                subscription=subscription,
                effective=cleaned["effective"],
                at=cleaned["at"] if now else timezone.now(),
                commit_leftover=cleaned.get("commit_leftover") or EXPIRE,
            )
        except BillingError as error:
            messages.error(
                request, gettext("Nothing was changed: %(reason)s") % {"reason": error.words}
            )
            return redirect(back)
        done = (
            gettext("%(subscription)s is canceled.")
            if now
            else gettext("%(subscription)s ends with its current period")
        )
        messages.success(request, done % {"subscription": subscription})
        return redirect(back)

    def _cancel_form_page(self, request, subscription, form, postpaid):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": subscription,
            "title": gettext("Cancel %(subscription)s") % {"subscription": subscription},
            "form": form,
            "postpaid": postpaid,
        }
        return TemplateResponse(request, "admin/billing/subscription/cancel.html", context)
