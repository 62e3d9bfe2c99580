"""Sending paused after a restore (billing.notifications.outbound_pause,
invoices.restore_pause): while paused, each sender leaves what it would send as it
is (pending, its attempts untouched) and the beat's sweeps find nothing due; the
resume sends each of them once. `after_restore --status` and `--resume` list the
periods billed again, old number beside new; the admin's page does as well, with
its button for Finance, and its banner on the index; /readyz and the metrics say
so. Time is set; the receivers (mail, webhooks, channels, Stripe, Peppol) are fakes
that record what they get."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from io import StringIO

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client

from billing.models import Alert, ChannelMessage, OutboundPause, WebhookDelivery, WebhookEndpoint
from billing.notifications import alerts, channels, webhooks
from billing.notifications.outbound_pause import outbound_pause_set, outbound_paused
from common import outbound_record
from config.metrics_export import SystemCollector
from config.user_language import user_language_set
from customers.services import customer_create
from invoices import collection, emails
from invoices.e_invoices import access_points
from invoices.e_invoices.access_points import FakeAccessPoint
from invoices.models import DocumentEmail, Invoice, Payment
from invoices.restore_pause import outbound_resume, rebilled_periods
from invoices.services import invoice_finalize, invoice_write_draft
from plans.rating import LineInput
from tests.billing.channel_receiver import ChannelReceiver
from tests.billing.webhook_receiver import WebhookReceiver
from tests.factories import published_version, subscribe
from tests.invoices.test_e_invoice_access_points import XML
from tests.test_i18n_pages import words

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, 9, tzinfo=UTC)
DEC_3 = datetime(2026, 12, 3, 9, tzinfo=UTC)
LATER = DEC_2 + timedelta(hours=1)
LINES = [LineInput("base_fee", "Growth (Dec 2026)", None, D(1), D("20.00"), D("20.00"))]


@pytest.fixture(autouse=True)
def _sending(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BILLING_INVOICE_EMAILS = True
    settings.BILLING_INVOICE_PDFS = False
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    FakeAccessPoint.sent.clear()
    yield
    FakeAccessPoint.sent.clear()


def paused(at: datetime = DEC_2, lost: list[dict] | None = None) -> OutboundPause:
    return outbound_pause_set(now=at, reason="a test's restore", lost=lost or [])


def customer(external_id: str = "acme", **fields):
    return customer_create(
        external_id=external_id,
        name=f"{external_id.title()} SAS",
        currency="USD",
        email=f"billing@{external_id}.test",
        **fields,
    )


def issued(capture, owner=None, *, subscription=None, at: datetime = DEC_2) -> Invoice:
    """An invoice of Nov 2026 finalized at `at`, with what its commit sends run."""
    owner = owner or customer()
    draft = invoice_write_draft(
        customer=owner,
        subscription=subscription,
        reason=Invoice.PERIOD,
        period_start=NOV_1,
        period_end=DEC_1,
        lines=LINES,
        now=DEC_1,
    )
    with time_machine.travel(at, tick=False), capture(execute=True):
        invoice_finalize(invoice=draft, now=at)
    return Invoice.objects.get(pk=draft.pk)


def resumed(capture, at: datetime = LATER):
    with time_machine.travel(at, tick=False), capture(execute=True):
        return outbound_resume(now=at, by="a test")


# Each sender, paused and resumed


def test_an_invoice_email_waits_pending_and_is_sent_once_on_resume(
    django_capture_on_commit_callbacks, mailoutbox
):
    # given: sending paused; an invoice issued (its email task runs at once)
    paused()
    invoice = issued(django_capture_on_commit_callbacks)
    email = DocumentEmail.objects.get()

    # then: nothing sent, the email pending as written, no attempt counted; sent
    # again by hand or by the beat, still nothing
    assert mailoutbox == []
    assert emails.document_email_send(email=email, now=LATER) is None
    assert emails.document_emails_due(now=LATER + timedelta(hours=1)) == []
    email.refresh_from_db()
    assert (email.status, email.attempts, email.next_attempt_at) == ("pending", 0, None)

    # when: resumed
    held = resumed(django_capture_on_commit_callbacks)

    # then: sent once
    assert held.document_emails == [email.pk]
    assert [m.subject for m in mailoutbox] == [f"Invoice {invoice.number} from Usage Billing Inc."]
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("sent", 1)
    assert not outbound_paused()


def test_an_alert_email_waits_unsent_and_is_sent_on_resume(
    django_capture_on_commit_callbacks, mailoutbox
):
    acme = customer()
    paused()
    with time_machine.travel(DEC_2, tick=False), django_capture_on_commit_callbacks(execute=True):
        alert = alerts.alert_raise(
            customer=acme,
            kind=Alert.LOW_BALANCE,
            period_start=NOV_1,
            key="credits",
            payload={"balance": "5", "threshold": "10"},
            now=DEC_2,
        )

    assert mailoutbox == []
    assert alerts.alert_email_send(alert=alert, now=LATER) is False
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.unsent_alert_emails_enqueue(now=LATER) == 0
    assert Alert.objects.get(pk=alert.pk).emailed_at is None

    held = resumed(django_capture_on_commit_callbacks)

    assert held.alert_emails == [alert.pk]
    assert [m.to for m in mailoutbox] == [["billing@acme.test"]]
    assert Alert.objects.get(pk=alert.pk).emailed_at == LATER


def test_channel_messages_wait_and_are_sent_on_resume(
    settings, django_capture_on_commit_callbacks, mailoutbox
):
    settings.BILLING_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    receiver = ChannelReceiver().start()
    try:
        acme = customer()
        paused()
        # a budget threshold's messages (the alert itself goes to the channels only)
        alert = Alert.objects.create(
            customer=acme,
            kind=Alert.BUDGET_THRESHOLD,
            period_start=NOV_1,
            key="budget:80",
            payload={},
            created_at=DEC_2,
        )
        rows = [
            ChannelMessage.objects.create(
                customer=acme,
                alert=alert,
                kind=kind,
                target=target,
                target_digest=channels.target_digest(target),
                subject="Budget reached" if kind == ChannelMessage.EMAIL else "",
                body="Your budget is reached." if kind == ChannelMessage.EMAIL else '{"text":"x"}',
                next_attempt_at=DEC_2,
                created_at=DEC_2,
            )
            for kind, target in (
                (ChannelMessage.EMAIL, "ops@acme.test"),
                (ChannelMessage.SLACK, receiver.url()),
            )
        ]

        assert [channels.channel_message_send(message=m, now=LATER) for m in rows] == [None, None]
        assert channels.channel_messages_due(now=LATER + timedelta(hours=1)) == []
        assert [(m.status, m.attempts) for m in ChannelMessage.objects.order_by("id")] == [
            ("pending", 0),
            ("pending", 0),
        ]
        assert (mailoutbox, receiver.received) == ([], [])

        held = resumed(django_capture_on_commit_callbacks)

        assert (held.channel_emails, held.channel_webhooks) == ([rows[0].pk], [rows[1].pk])
        assert [m.to for m in mailoutbox] == [["ops@acme.test"]]
        assert receiver.accepted == [{"text": "x"}]
        assert [(m.status, m.attempts) for m in ChannelMessage.objects.order_by("id")] == [
            ("succeeded", 1),
            ("succeeded", 1),
        ]
    finally:
        receiver.stop()


def test_a_webhook_waits_and_is_delivered_once_on_resume(
    settings, django_capture_on_commit_callbacks
):
    settings.BILLING_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    receiver = WebhookReceiver().start()
    try:
        endpoint = WebhookEndpoint(url=receiver.url, description="tests")
        endpoint.full_clean()
        endpoint.save()
        receiver.secret = endpoint.secret
        paused()
        with (
            time_machine.travel(DEC_2, tick=False),
            django_capture_on_commit_callbacks(execute=True),
        ):
            (delivery_id,) = webhooks.webhook_event_publish(
                event_type="invoice.finalized",
                data={"invoice": "INV-2026-000001"},
                customer=None,
                now=DEC_2,
                event_id="evt_test_1",
            )
        delivery = WebhookDelivery.objects.get(pk=delivery_id)

        assert webhooks.webhook_deliver(delivery=delivery, now=LATER) is None
        assert webhooks.webhook_deliveries_due(now=LATER + timedelta(hours=1)) == []
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, receiver.events) == ("pending", 0, [])

        receiver.now = LATER
        held = resumed(django_capture_on_commit_callbacks)

        assert held.webhooks == [(delivery_id, False)]
        assert [event["id"] for event in receiver.events] == ["evt_test_1"]
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("succeeded", 1)
    finally:
        receiver.stop()


def test_a_peppol_e_invoice_waits_and_is_sent_on_resume(
    settings, django_capture_on_commit_callbacks
):
    settings.BILLING_PEPPOL_ACCESS_POINT = "fake"
    settings.BILLING_INVOICE_EMAILS = False
    invoice = issued(django_capture_on_commit_callbacks)
    Invoice.objects.filter(pk=invoice.pk).update(
        e_invoice_format="peppol", e_invoice_xml=XML.decode("utf-8")
    )
    paused(at=DEC_3)

    assert access_points.e_invoice_send(model="invoice", pk=invoice.pk, now=DEC_3) is None
    assert access_points.e_invoices_unsent(now=DEC_3) == []
    assert FakeAccessPoint.sent == []

    held = resumed(django_capture_on_commit_callbacks, at=DEC_3)

    assert held.e_invoices == [("invoice", invoice.pk)]
    assert [sent["number"] for sent in FakeAccessPoint.sent] == [invoice.number]
    assert Invoice.objects.get(pk=invoice.pk).e_invoice_sent_at == DEC_3


def test_an_invoice_is_not_charged_while_paused_and_is_charged_once_on_resume(
    fake_stripe, django_capture_on_commit_callbacks
):
    # given: Stripe on, sending paused; an invoice finalized (its charge queued at once)
    paused()
    invoice = issued(django_capture_on_commit_callbacks)
    payment = Payment.objects.get(invoice=invoice)

    # then: not charged, nor by the beat's sweep; its attempts untouched
    assert fake_stripe.to("POST", "/v1/payment_intents") == []
    assert collection.payment_attempt(payment=payment, now=LATER) is None
    assert collection.payments_due(now=LATER + timedelta(hours=1)) == []
    payment.refresh_from_db()
    assert (payment.status, payment.attempts) == ("pending", 0)

    held = resumed(django_capture_on_commit_callbacks)

    assert held.charges == [payment.pk]
    (charge,) = fake_stripe.to("POST", "/v1/payment_intents")
    assert charge.idempotency_key == f"invoice-{invoice.pk}-collect-1"
    payment.refresh_from_db()
    assert (payment.status, payment.attempts, payment.invoice.status) == ("succeeded", 1, "paid")


def test_a_resume_when_not_paused_changes_and_sends_nothing(
    django_capture_on_commit_callbacks, mailoutbox
):
    invoice = issued(django_capture_on_commit_callbacks)
    DocumentEmail.objects.filter(invoice=invoice).update(status="pending", attempts=0)

    assert resumed(django_capture_on_commit_callbacks) is None
    assert OutboundPause.objects.exists() is False
    assert len(mailoutbox) == 1  # the invoice's own, before


# The periods billed again, and the command


def lost_invoice_recorded(*, owner, subscription, number: str, document_id: int) -> None:
    """The outbound record says an invoice of `subscription` for Nov 2026 was stored
    and emailed under `number`, which this database does not have (lost with the
    backup's future)."""
    billed = {
        "subscription": subscription.pk,
        "reason": "period",
        "period_start": NOV_1.isoformat(),
        "period_end": DEC_1.isoformat(),
    }
    outbound_record.record_append(
        what="document_stored",
        at=DEC_2,
        kind="invoices",
        id=document_id,
        number=number,
        customer=owner.pk,
        file=f"invoices/INV-2026/{number}-0123456789abcdef.pdf",
        sha256="0" * 64,
        **billed,
    )
    outbound_record.record_append(
        what="document_emailed", at=DEC_2, id=1, number=number, customer=owner.pk, **billed
    )


@pytest.fixture
def rebilled(django_capture_on_commit_callbacks):
    """A backup restored that lost INV-2026-000001 (acme's November, emailed) and
    INV-2026-000002 (a purchase of globex: no period), the restore step run, then
    the close bills acme's November again: INV-2026-000003."""
    version = published_version("growth", base_fee=D("20.00"))
    acme = customer("acme")
    globex = customer("globex")
    subscription = subscribe(acme, version, start=NOV_1)
    Invoice.objects.filter(subscription=subscription).delete()  # its start invoice, a draft
    lost_invoice_recorded(
        owner=acme, subscription=subscription, number="INV-2026-000001", document_id=900_001
    )
    outbound_record.record_append(
        what="document_emailed", at=DEC_2, id=2, number="INV-2026-000002", customer=globex.pk
    )
    with time_machine.travel(DEC_2, tick=False):
        call_command("after_restore", stdout=StringIO())
    again = issued(django_capture_on_commit_callbacks, acme, subscription=subscription, at=DEC_3)
    return again


def test_the_period_billed_again_is_matched_to_the_lost_number(rebilled):
    assert rebilled.number == "INV-2026-000003"
    periods = rebilled_periods(lost=OutboundPause.objects.get().lost)

    assert [
        (p.lost_number, p.new_number, p.customer_external_id, p.customer_name, p.period_text())
        for p in periods
    ] == [
        ("INV-2026-000001", "INV-2026-000003", "acme", "Acme SAS", "1 Nov – 30 Nov 2026 (UTC)"),  # noqa: RUF001
        ("INV-2026-000002", None, "globex", "Globex SAS", ""),
    ]


def test_status_lists_the_periods_and_what_is_held_and_changes_nothing(rebilled, mailoutbox):
    out = StringIO()
    with time_machine.travel(DEC_3, tick=False):
        call_command("after_restore", "--status", stdout=out)

    printed = out.getvalue()
    assert "sending: PAUSED since 2026-12-02T09:00:00+00:00; held: 1 document e-mails, " in printed
    assert "periods billed again: 1 of the 2 document(s)" in printed
    assert (
        "  INV-2026-000001 -> INV-2026-000003: acme (Acme SAS), 1 Nov – 30 Nov 2026 (UTC), "  # noqa: RUF001
        "emailed 2026-12-02T09:00:00+00:00\n" in printed
    )
    assert "  INV-2026-000002 -> not billed again yet: globex (Globex SAS), emailed " in printed
    assert outbound_paused()
    assert mailoutbox == []


def test_resume_lists_the_periods_then_sends_each_new_number_once(
    rebilled, mailoutbox, django_capture_on_commit_callbacks
):
    out = StringIO()
    with time_machine.travel(DEC_3, tick=False), django_capture_on_commit_callbacks(execute=True):
        call_command("after_restore", "--resume", stdout=out)
    again = StringIO()
    call_command("after_restore", "--resume", stdout=again)

    printed = out.getvalue()
    assert "INV-2026-000001 -> INV-2026-000003: acme (Acme SAS)" in printed
    assert "sending: RESUMED at 2026-12-03T09:00:00+00:00; queued 1 document e-mails" in printed
    assert [m.subject for m in mailoutbox] == ["Invoice INV-2026-000003 from Usage Billing Inc."]
    assert "sending: not paused (resumed at 2026-12-03T09:00:00+00:00 by manage.py" in (
        again.getvalue()
    )
    assert "sending was not paused: nothing to resume" in again.getvalue()


def test_a_second_restore_step_keeps_the_numbers_the_first_found_lost(rebilled):
    # the close has numbered INV-2026-000003 since: a second step finds nothing lost
    with time_machine.travel(DEC_3, tick=False):
        call_command("after_restore", stdout=StringIO())

    assert [e["number"] for e in OutboundPause.objects.get().lost] == [
        "INV-2026-000001",
        "INV-2026-000002",
    ]
    assert OutboundPause.objects.get().paused_at == DEC_2


# The admin


PAGE = "/admin/billing/outboundpause/"
RESUME = "/admin/billing/outboundpause/resume/"


def role_client(role: str, language: str = "en") -> Client:
    call_command("setup_roles", stdout=StringIO(), stderr=StringIO())
    user = User.objects.create_user(username=f"{role.lower()}_{language}", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    user_language_set(user=user, language=language)
    client = Client()
    client.force_login(user)
    return client


def test_the_index_shows_a_banner_while_paused_linking_to_the_page(admin_client, rebilled):
    index = words(admin_client.get("/admin/").content.decode())

    assert (
        "Outbound e-mail and webhooks are paused after a restore: 1 e-mail, 0 webhooks held."
        in index
    )
    assert f'href="{PAGE}"' in admin_client.get("/admin/").content.decode()


def test_no_banner_once_resumed(admin_client, rebilled, django_capture_on_commit_callbacks):
    resumed(django_capture_on_commit_callbacks)

    assert "paused after a restore" not in admin_client.get("/admin/").content.decode()


def test_the_page_lists_the_periods_and_resumes_after_a_confirmation(
    admin_client, rebilled, mailoutbox, django_capture_on_commit_callbacks
):
    page = words(admin_client.get(PAGE).content.decode())
    assert "INV-2026-000001 INV-2026-000003 acme Acme SAS 1 Nov – 30 Nov 2026 (UTC) yes" in page  # noqa: RUF001
    assert "INV-2026-000002 not billed again yet globex Globex SAS" in page
    assert "Invoice, credit note and reminder e-mails 1" in page
    assert 'value="Resume sending"' in admin_client.get(PAGE).content.decode()

    # the button asks first, and the question changes nothing
    asked = admin_client.post(RESUME)
    assert asked.status_code == 200
    assert "Everything held is sent now: 1 e-mail, 0 webhooks" in words(asked.content.decode())
    assert outbound_paused()
    assert mailoutbox == []

    # confirmed, sent
    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(RESUME, {"confirmed": "yes"})
    assert (done.status_code, done.url) == (302, PAGE)
    assert not outbound_paused()
    assert [m.subject for m in mailoutbox] == ["Invoice INV-2026-000003 from Usage Billing Inc."]
    assert OutboundPause.objects.get().resumed_by == "admin"
    assert "Sending is not paused: it was resumed on " in words(
        admin_client.get(PAGE).content.decode()
    )


def test_support_reads_the_page_but_may_not_resume(rebilled, mailoutbox):
    support = role_client("Support")

    page = support.get(PAGE)
    refused = support.post(RESUME, {"confirmed": "yes"})

    assert page.status_code == 200
    assert "INV-2026-000001" in page.content.decode()
    assert "Resume sending" not in page.content.decode()
    assert refused.status_code == 403
    assert outbound_paused()
    assert OutboundPause.objects.get().resumed_at is None
    assert mailoutbox == []


def test_finance_may_resume(rebilled, mailoutbox, django_capture_on_commit_callbacks):
    finance = role_client("Finance")

    with django_capture_on_commit_callbacks(execute=True):
        finance.post(RESUME, {"confirmed": "yes"})

    assert not outbound_paused()
    assert len(mailoutbox) == 1


def test_a_staff_user_without_the_role_sees_neither_page_nor_link(rebilled):
    user = User.objects.create_user(username="nobody", is_staff=True)
    client = Client()
    client.force_login(user)

    assert client.get(PAGE).status_code == 403
    index = client.get("/admin/").content.decode()
    assert "paused after a restore" in index  # told, with no link to follow
    assert f'href="{PAGE}"' not in index


APOSTROPHE = "\N{RIGHT SINGLE QUOTATION MARK}"
FRENCH = [
    f"L{APOSTROPHE}envoi des e-mails et des webhooks est suspendu après une restauration : "
    "1 e-mail, 0 webhook en attente.",
    "Lire les périodes facturées à nouveau, puis reprendre les envois",
]
FRENCH_PAGE = [
    "Envois après une restauration",
    "Périodes facturées à nouveau",
    "Numéro que le client peut détenir",
    "pas encore facturée à nouveau",
    f"E-mails de factures, d{APOSTROPHE}avoirs et de relances 1",
    "1 nov. – 30 nov. 2026 (UTC)",  # noqa: RUF001
]
GERMAN_PAGE = [
    "Versand nach einer Wiederherstellung",
    "Erneut abgerechnete Zeiträume",
    "noch nicht erneut abgerechnet",
]
ENGLISH = [
    "Outbound e-mail",
    "held",
    "Periods billed again",
    "Number the customer may hold",
    "not billed again yet",
    "Resume sending",
    "Sending after a restore",
    "Invoice, credit note",
    "Peppol e-invoices",
    "Stripe charges",
]


@pytest.mark.parametrize("language", ["fr", "de"])
def test_no_english_left_on_the_banner_and_the_page(rebilled, language):
    finance = role_client("Finance", language)

    index = words(finance.get("/admin/").content.decode())
    html = finance.get(PAGE).content.decode()
    page = words(html)
    asked = words(finance.post(RESUME).content.decode())
    button = {"fr": 'value="Reprendre les envois"', "de": 'value="Versand fortsetzen"'}
    assert button[language] in html

    left = [
        (p, n)
        for n, text in (("index", index), ("page", page), ("asked", asked))
        for p in ENGLISH
        if p in text
    ]
    assert left == []
    if language == "fr":
        assert [p for p in FRENCH if p not in index] == []
        assert [p for p in FRENCH_PAGE if p not in page] == []
    else:
        assert [p for p in GERMAN_PAGE if p not in page] == []


# /readyz and the metrics


def test_readyz_says_paused_and_stays_ready(client):
    paused()

    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    assert response.json()["checks"]["outbound"] == "paused"


def test_the_metrics_gauge_says_whether_sending_is_paused(django_capture_on_commit_callbacks):
    def gauge() -> float:
        (family,) = [m for m in SystemCollector().collect() if m.name == "billing_outbound_paused"]
        return family.samples[0].value

    assert gauge() == 0
    paused()
    assert gauge() == 1
    resumed(django_capture_on_commit_callbacks)
    assert gauge() == 0
