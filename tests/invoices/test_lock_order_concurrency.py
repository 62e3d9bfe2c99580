"""The one lock order (billing.locks) between credit notes, sales and finalizing, for
real on PostgreSQL: the customer's row before its invoices', its wallets' and a
numbering sequence's. Each test holds a sequence's row from a connection of its
own while the paths line up behind it, one by one, in the order that deadlocked when
a credit note on a purchase took the customer first and the others took it last;
then lets go. Every path finishes: none is a deadlock's victim."""

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.db import connection, transaction

from billing.invoicing.progressive import threshold_invoice_write
from billing.subscriptions.lifecycle import subscription_cancel
from billing.usage.ingestion import events_ingest
from customers.locks import customer_lock
from customers.services import customer_create
from invoices.credit_balance import credit_balance
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditNote, Invoice, InvoiceSequence
from invoices.services import invoice_finalize, invoice_void, invoices_finalize_due
from invoices.settlement import invoice_mark_paid
from plans.models import CreditPack
from plans.pricing import PricingSpec, TierSpec
from plans.validation import ChargeSpec
from tests.factories import period_draft, published_version, subscribe
from tests.invoices.conftest import base_fee_lines, finalized_invoice
from tests.threads import beside_a_close, waiting_for_locks
from tests.wallets.support import wallet_of
from wallets.commit_models import Commit
from wallets.commit_terms import CommitRequest
from wallets.commits import commit_sign
from wallets.purchases import credit_pack_purchase

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("wallets_stay_consistent"),
]

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_5 = datetime(2026, 11, 5, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_3 = datetime(2026, 12, 3, tzinfo=UTC)
DEC_4 = datetime(2026, 12, 4, tzinfo=UTC)
JAN_1 = datetime(2027, 1, 1, tzinfo=UTC)


def runs(first: int, end: int, at: datetime) -> list[dict]:
    return [
        {
            "id": f"run-{n}",
            "customer": "acme",
            "event_name": "agent.run",
            "timestamp": (at - timedelta(seconds=1)).isoformat(),
        }
        for n in range(first, end)
    ]


def sequence_row(name: str):
    """Lock a numbering sequence's row (made first if there is none yet)."""
    InvoiceSequence.objects.get_or_create(name=name)
    return lambda: InvoiceSequence.objects.select_for_update().get(name=name)


class Lineup:
    """A row held by a connection of its own (`hold` locks it); paths started one
    by one, each once the one before waits for a lock; then the row let go."""

    def __init__(self, hold):
        self.hold = hold
        self.held, self.release = threading.Event(), threading.Event()
        self.threads: list[threading.Thread] = []
        self.results: dict[str, object] = {}
        self._start(self._hold)
        assert self.held.wait(timeout=20)

    def _hold(self) -> None:
        with transaction.atomic():
            self.hold()
            self.held.set()
            self.release.wait(timeout=60)

    def _start(self, target) -> None:
        def run() -> None:
            try:
                target()
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        self.threads.append(thread)

    def then(self, name: str, work) -> "Lineup":
        waiting = len(self.results)

        def run() -> None:
            try:
                self.results[name] = work()
            except Exception as exc:
                self.results[name] = exc

        self.results[name] = None
        self._start(run)
        deadline = time.monotonic() + 20
        while waiting_for_locks() <= waiting:
            assert time.monotonic() < deadline, f"{name} never waited for a lock"
            time.sleep(0.02)
        return self

    def let_go(self) -> dict[str, object]:
        self.release.set()
        for thread in self.threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in self.threads), "a path is stuck"
        failed = {n: r for n, r in self.results.items() if isinstance(r, Exception)}
        assert not failed, f"failed: {failed}"
        return self.results


def runs_100() -> CreditPack:
    return CreditPack.objects.get(code="runs_100")


def note(invoice: Invoice, amount: str, now: datetime) -> CreditNote:
    (line_id,) = invoice.lines.values_list("pk", flat=True)
    return credit_note_issue(
        invoice=invoice,
        lines=[CreditLineInput(line_id, D(amount))],
        reason=CreditNote.ORDER_CHANGE,
        now=now,
    )


def paid_invoice(customer, amount: str) -> Invoice:
    invoice = finalized_invoice(customer, base_fee_lines(amount), start=NOV_1, end=DEC_1)
    return invoice_mark_paid(invoice=invoice, reference="bank transfer", now=DEC_1)


def test_a_note_on_a_purchase_and_a_note_paid_to_the_balance_at_once(acme):
    # given: a pack sold (runs_100, 99.00) and a paid invoice of 50.00
    _, purchase = credit_pack_purchase(customer=acme, pack=runs_100(), now=NOV_5)
    paid = paid_invoice(acme, "50.00")

    # when: a note of 10.00 on the paid invoice waits for the note sequence, then a
    # note of 49.50 on the purchase (50 credits) lines up behind it
    results = (
        Lineup(sequence_row("CN-2026"))
        .then("balance note", lambda: note(paid, "10.00", DEC_3))
        .then("purchase note", lambda: note(purchase, "49.50", DEC_3))
        .let_go()
    )

    # then: both issued, in the order they came, each with what it gives back
    assert results["balance note"].number == "CN-2026-000001"
    assert results["purchase note"].number == "CN-2026-000002"
    assert credit_balance(acme) == D("10.00")
    assert wallet_of(acme).balance == D(50)
    assert Invoice.objects.get(pk=purchase.pk).amount_due == D("49.50")


@pytest.mark.parametrize("finalizing", ["one invoice", "the due drafts"])
def test_finalizing_a_sale_and_a_note_on_a_purchase_at_once(acme, finalizing):
    # given: acme has 20.00 on its credit balance, a draft of 30.00 and a pack sold
    credited = paid_invoice(acme, "20.00")
    note(credited, "20.00", DEC_1)
    draft = period_draft(acme, base_fee_lines("30.00"), start=DEC_1, end=DEC_3)
    _, purchase = credit_pack_purchase(customer=acme, pack=runs_100(), now=NOV_5)

    def finalize():
        if finalizing == "one invoice":
            return invoice_finalize(invoice=draft, now=DEC_3, collect=False)
        return invoices_finalize_due(cutoff=DEC_3, now=DEC_3)

    # when: the draft's finalizing waits for the invoice sequence, then a second pack
    # is sold, then a note on the first purchase lines up
    (
        Lineup(sequence_row("INV-2026"))
        .then("finalize", finalize)
        .then("sale", lambda: credit_pack_purchase(customer=acme, pack=runs_100(), now=DEC_3))
        .then("purchase note", lambda: note(purchase, "49.50", DEC_3))
        .let_go()
    )

    # then: the draft is numbered and paid 20.00 from the balance, the pack sold
    # after it, and the note took back 50 credits
    finalized = Invoice.objects.get(pk=draft.pk)
    assert (finalized.status, finalized.credits_applied) == (Invoice.FINALIZED, D("20.00"))
    sold = Invoice.objects.filter(reason=Invoice.PURCHASE).latest("pk")
    assert (finalized.number, sold.number) == ("INV-2026-000003", "INV-2026-000004")
    assert credit_balance(acme) == D("0.00")
    assert wallet_of(acme).balance == D(150)


def thresholded(acme):
    """S20's tiers and a threshold of 5.00; acme has a credit balance entry (1.00
    credited on a paid invoice), a threshold invoice for 100 runs (10.00, 1.00 of it
    paid from the balance) and 100 runs more, not checked yet."""
    credited = paid_invoice(acme, "1.00")
    note(credited, "1.00", DEC_1)
    tiers = PricingSpec("graduated", tiers=(TierSpec(D(100), D("0.10")), TierSpec(None, D("0.05"))))
    published_version(
        "thresholded",
        progressive_billing_threshold=D("5.00"),
        charges=(ChargeSpec("agent_runs", "overage", pricing=tiers),),
    )
    subscription = subscribe(acme, "thresholded", DEC_1)
    events_ingest(events=runs(0, 100, DEC_3), now=DEC_3)
    first = threshold_invoice_write(subscription=subscription, now=DEC_3)
    assert (first.subtotal, first.credits_applied) == (D("10.00"), D("1.00"))
    events_ingest(events=runs(100, 200, DEC_4), now=DEC_4)
    return subscription, first


def test_a_threshold_invoice_written_while_an_earlier_one_is_voided(acme):
    subscription, first = thresholded(acme)

    # when: the void of the first waits for the customer's row, then the check that
    # writes the second lines up
    (
        Lineup(lambda: customer_lock(acme.pk))
        .then("void", lambda: invoice_void(invoice=first, reason="other", now=DEC_4))
        .then("threshold", lambda: threshold_invoice_write(subscription=subscription, now=DEC_4))
        .let_go()
    )

    # then: the first is void (its 10.00 back: 1.00 to the balance, the rest off what
    # it had due) and a second threshold invoice billed what was due when it was written
    assert Invoice.objects.get(pk=first.pk).status == Invoice.VOID
    second = Invoice.objects.filter(reason=Invoice.THRESHOLD).exclude(pk=first.pk).get()
    assert second.status == Invoice.FINALIZED


def test_a_prepaid_commit_signed_while_a_threshold_invoice_is_voided(acme):
    """Signing a prepaid commit finalizes its invoice under the subscription's lock:
    it takes the customer's row first, as the void does (it took the subscription
    first and deadlocked with the void)."""
    subscription, first = thresholded(acme)
    request = CommitRequest(
        amount=D("1200.00"),
        currency="USD",
        starts_at=DEC_1,
        ends_at=datetime(2027, 12, 1, tzinfo=UTC),
        billing=Commit.PREPAID,
        access="per_period",
        applies_to=("agent_runs",),
    )

    def sign():
        return commit_sign(
            subscription=subscription, request=request, known_meters={"agent_runs"}, now=DEC_4
        )

    # when: the void waits for the customer's row, then a prepaid commit is signed
    results = (
        Lineup(lambda: customer_lock(acme.pk))
        .then("void", lambda: invoice_void(invoice=first, reason="other", now=DEC_4))
        .then("sign", sign)
        .let_go()
    )

    # then: both done, the commit's invoice numbered after the void's credit note
    assert Invoice.objects.get(pk=first.pk).status == Invoice.VOID
    assert results["sign"].invoice.status == Invoice.FINALIZED
    assert results["sign"].invoice.total == D("1200.00")


def test_finalizing_spends_credit_balances_while_a_close_writes_the_same_customers_invoices(
    acme, settings
):
    """A close writes its customers' invoices, each taking a key share of its
    customer's row (as it commits), while a finalization locks the customers whose
    credit balance it spends. The customer's lock (customers.locks) conflicts with no
    key share: with FOR UPDATE the finalization held acme and waited for the close's
    share of globex, while the close waited to write acme's invoice: a deadlock, and
    one of them aborted (the close processes gave way for it, issue 48)."""
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    # given: acme and globex (in id order) each owed 5.00 and with a due draft of 20.00
    globex = customer_create(external_id="globex", name="Globex", currency="USD")
    drafts = []
    for customer in (acme, globex):
        finalized_invoice(customer, base_fee_lines("-5.00"), start=NOV_1, end=DEC_1)
        drafts.append(period_draft(customer, base_fee_lines("20.00"), start=DEC_1, end=JAN_1))

    # when: the drafts are finalized while a close writes globex's invoice, then acme's
    failed = beside_a_close(
        lambda: invoices_finalize_due(cutoff=JAN_1, now=JAN_1), first=globex, then=acme
    )

    # then: neither aborted; each draft spent its customer's 5.00, and the close's
    # invoices are written
    assert failed == []
    for draft in drafts:
        draft.refresh_from_db()
        assert (draft.status, draft.credits_applied, draft.amount_due) == (
            Invoice.FINALIZED,
            D("5.00"),
            D("15.00"),
        )
    assert Invoice.objects.filter(period_start=JAN_1, status=Invoice.DRAFT).count() == 2


def test_a_cancel_credits_its_start_draft_while_the_beat_finalizes_it(acme):
    # given: acme on 31.00 a month from Dec 1, its start invoice still a draft, and
    # a paid invoice of 20.00
    published_version("monthly_31", base_fee=D("31.00"))
    subscription = subscribe(acme, "monthly_31", DEC_1)
    draft = Invoice.objects.get(subscription=subscription, reason=Invoice.START)
    paid = paid_invoice(acme, "20.00")
    dec_16 = datetime(2026, 12, 16, tzinfo=UTC)

    # when: the beat's finalization claims the draft and waits for the invoice
    # sequence; the cancel (the customer, the subscription, then the draft it
    # credits: billing.invoicing.unused_time) lines up behind it; then a note on the
    # paid invoice (the customer)
    (
        Lineup(sequence_row("INV-2026"))
        .then("beat", lambda: invoices_finalize_due(cutoff=DEC_3, now=DEC_3))
        .then(
            "cancel",
            lambda: subscription_cancel(
                subscription=subscription, effective="immediate", at=dec_16
            ),
        )
        .then("note", lambda: note(paid, "5.00", dec_16))
        .let_go()
    )

    # then: the beat numbered the draft, the cancel credited 16 of 31 days of it
    # (16.00) by a credit note off its amount due, and the note followed
    start = Invoice.objects.get(pk=draft.pk)
    assert (start.status, start.finalized_at) == (Invoice.FINALIZED, DEC_3)
    unused = CreditNote.objects.get(invoice=start)
    assert (unused.subtotal, unused.to_amount_due) == (D("16.00"), D("16.00"))
    assert start.amount_due == D("15.00")
    assert CreditNote.objects.get(invoice=paid).total == D("5.00")
    assert not Invoice.objects.filter(reason=Invoice.CANCEL).exists()
