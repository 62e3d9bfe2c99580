"""`manage.py close_periods` when the database aborts one of its transactions (a
deadlock, a serialization failure): the transaction is tried again and the run
finishes; when the database keeps aborting it, the command says so and what
committed stays. The aborts are injected as the database raises them: inside
the transaction, rolling back what it wrote."""

from datetime import UTC, datetime
from decimal import Decimal as D
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import transaction

from billing.invoicing import close
from billing.models import Subscription
from invoices import services
from invoices.models import Invoice
from tests.factories import CustomerFactory, PlanFactory, subscribe
from tests.threads import deadlock_detected

pytestmark = pytest.mark.django_db(transaction=True)

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def subscriptions(settings) -> list[Subscription]:
    """Three customers on a flat 10.00 a month since October 1st (drafts of their
    start invoices), their first periods ended by November 1st."""
    settings.BILLING_INVOICE_PDFS = False
    plan = PlanFactory(code="flat", version__base_fee=D("10.00"))
    return [subscribe(CustomerFactory(external_id=f"c{n}"), plan, OCT_1) for n in range(3)]


def close_periods() -> str:
    """The close as of November 1st, run on that day (not back-dated: what it
    issues is dated when issued, invoices.issue_dates)."""
    out = StringIO()
    with time_machine.travel(NOV_1, tick=False):
        call_command("close_periods", "--as-of", NOV_1.isoformat(), stdout=out)
    return out.getvalue().strip()


def assert_closed_once(subscriptions) -> None:
    closing = Invoice.objects.filter(reason=Invoice.PERIOD).order_by("subscription_id")
    assert [i.subscription_id for i in closing] == [s.pk for s in subscriptions]
    periods = Subscription.objects.order_by("pk").values_list("current_period_start", flat=True)
    assert list(periods) == [NOV_1] * 3


def test_a_finalization_batch_the_database_aborts_is_tried_again(subscriptions, monkeypatch):
    # given: a database that aborts the first finalization batch once it has
    # numbered its drafts, as PostgreSQL aborts one side of a deadlock
    tries = []
    finalize_batch = services._finalize_batch

    def aborted_once(ids, now):
        tries.append(sorted(ids))
        if len(tries) == 1:
            with transaction.atomic():
                finalize_batch(ids, now)
                raise deadlock_detected()
        return finalize_batch(ids, now)

    monkeypatch.setattr(services, "_finalize_batch", aborted_once)

    # when
    output = close_periods()

    # then: the batch ran again and the run finished; every period closed once,
    # every invoice finalized once, numbered gap-free (the aborted try's numbers
    # rolled back with it)
    assert output == f"closed 3 period(s), finalized 6 invoice(s) as of {NOV_1.isoformat()}"
    assert len(tries) == 2 and tries[0] == tries[1]
    assert_closed_once(subscriptions)
    numbers = Invoice.objects.order_by("number").values_list("status", "number")
    assert list(numbers) == [(Invoice.FINALIZED, f"INV-2026-00000{n}") for n in range(1, 7)]


def test_a_close_the_database_aborts_is_tried_again(subscriptions, monkeypatch):
    # given: a database that aborts the close of the second subscription twice:
    # in its group's transaction, then in its own
    aborted = []
    close_locked = close._close_locked

    def aborting(subscription):
        if subscription.pk == subscriptions[1].pk and len(aborted) < 2:
            aborted.append(subscription.pk)
            raise deadlock_detected()
        return close_locked(subscription)

    monkeypatch.setattr(close, "_close_locked", aborting)

    # when
    output = close_periods()

    # then
    assert output == f"closed 3 period(s), finalized 6 invoice(s) as of {NOV_1.isoformat()}"
    assert aborted == [subscriptions[1].pk] * 2
    assert_closed_once(subscriptions)
    assert not Invoice.objects.filter(status=Invoice.DRAFT).exists()


def test_a_batch_the_database_keeps_aborting_ends_the_command_with_a_message(
    subscriptions, monkeypatch
):
    # given: a database that aborts every finalization batch
    finalize_batch = services._finalize_batch

    def always_aborted(ids, now):
        raise deadlock_detected()

    monkeypatch.setattr(services, "_finalize_batch", always_aborted)

    # when / then: a message, no traceback; the periods closed stay closed
    with pytest.raises(CommandError) as refused:
        close_periods()
    assert str(refused.value) == (
        "the database stopped the close (deadlock detected); what was closed and "
        "finalized stays so: run it again to do the rest"
    )
    assert_closed_once(subscriptions)
    assert Invoice.objects.filter(status=Invoice.DRAFT).count() == 6

    # and: the next run finalizes the six drafts, closing nothing again
    monkeypatch.setattr(services, "_finalize_batch", finalize_batch)
    assert close_periods().startswith("closed 0 period(s), finalized 6 invoice(s)")
    assert_closed_once(subscriptions)
