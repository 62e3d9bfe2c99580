"""Billing > Sending after a restore: while the restore step's pause holds what
leaves (billing.notifications.outbound_pause), the page lists the periods billed
again (the number a customer may hold beside the number replacing it, the
customer by its own id and name, the period) and what is held by kind, with a
"Resume sending" button for who may resume (billing.resume_outbound: Finance;
a superuser). The button leads to the shared confirmation page; only its POST
resumes (invoices.restore_pause.outbound_resume). The admin's index shows a
banner linking here while sending is paused (outbound_pause_banner)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from billing.models import OutboundPause
from billing.notifications.outbound_pause import outbound_paused
from common.admin_confirm import Confirmation, confirmation_page, is_confirmed
from common.admin_forms import RecordAdmin
from invoices.restore_pause import Held, outbound_held, outbound_pause_state, outbound_resume

VIEW = "billing.view_outboundpause"
RESUME = "billing.resume_outbound"

# Each kind held, as the page names it (the attributes of invoices.restore_pause.Held).
KINDS = (
    ("document_emails", _("Invoice, credit note and reminder e-mails")),
    ("alert_emails", _("Alert e-mails")),
    ("channel_emails", _("E-mails to customers' alert channels")),
    ("channel_webhooks", _("Messages to customers' Slack, Teams and Discord channels")),
    ("webhooks", _("Webhooks to your endpoints")),
    ("e_invoices", _("Peppol e-invoices")),
    ("charges", _("Stripe charges of invoices")),
)


def held_rows(held: Held) -> list[tuple[str, int]]:
    return [(str(label), len(getattr(held, name))) for name, label in KINDS]


def held_words(held: Held) -> dict[str, str]:
    """'1 e-mail' and '2 webhooks' held, in the active language."""
    return {
        "emails": ngettext("%(count)s e-mail", "%(count)s e-mails", held.emails)
        % {"count": held.emails},
        "webhooks": ngettext("%(count)s webhook", "%(count)s webhooks", held.webhook_count)
        % {"count": held.webhook_count},
    }


def outbound_pause_banner(request) -> dict | None:
    """The index's banner while sending is paused, with the page's link for who may
    read it; None when sending is not paused."""
    if not outbound_paused():
        return None
    pause = OutboundPause.objects.get(pk=OutboundPause.ONLY)
    held = outbound_held(paused_at=pause.paused_at, now=timezone.now())
    text = gettext(
        "Outbound e-mail and webhooks are paused after a restore: %(emails)s, %(webhooks)s held."
    ) % held_words(held)
    url = None
    if request.user.has_perm(VIEW):
        url = reverse("admin:billing_outboundpause_changelist")
    return {"text": text, "url": url}


@admin.register(OutboundPause)
class OutboundPauseAdmin(RecordAdmin):
    """No records to list: the list page is the pause's page."""

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(VIEW)

    def get_urls(self):
        return [
            path(
                "",
                self.admin_site.admin_view(self.pause_view),
                name="billing_outboundpause_changelist",
            ),
            path(
                "resume/",
                self.admin_site.admin_view(self.resume_view),
                name="billing_outboundpause_resume",
            ),
        ]

    def pause_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        state = outbound_pause_state(now=timezone.now())
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Sending after a restore"),
            "opts": self.model._meta,
            "state": state,
            "held": held_rows(state.held) if state and state.paused_since else [],
            "may_resume": bool(state and state.paused_since) and request.user.has_perm(RESUME),
        }
        return TemplateResponse(request, "admin/billing/outbound_pause.html", context)

    def resume_view(self, request):
        if request.method != "POST":
            return redirect(reverse("admin:billing_outboundpause_changelist"))
        if not request.user.has_perm(RESUME):
            raise PermissionDenied
        page = reverse("admin:billing_outboundpause_changelist")
        now = timezone.now()
        if not is_confirmed(request):
            state = outbound_pause_state(now=now)
            if state is None or state.paused_since is None:
                messages.info(request, gettext("Sending is not paused."))
                return redirect(page)
            return confirmation_page(
                request,
                self,
                Confirmation(
                    title=gettext("Resume sending"),
                    consequences=[
                        gettext(
                            "Everything held is sent now: %(emails)s, %(webhooks)s, and "
                            "every Peppol e-invoice and Stripe charge of an invoice that waits."
                        )
                        % held_words(state.held),
                        gettext(
                            "Customers receive the invoices that bill their periods again "
                            "under new numbers: tell them first which number replaces which."
                        ),
                    ],
                    confirm_label=gettext("Resume sending"),
                    cancel_url=page,
                ),
            )
        held = outbound_resume(now=now, by=request.user.get_username())
        if held is None:
            messages.info(request, gettext("Sending is not paused."))
        else:
            messages.success(
                request,
                gettext("Sending resumed: %(emails)s, %(webhooks)s and the rest held are sent now.")
                % held_words(held),
            )
        return redirect(page)
