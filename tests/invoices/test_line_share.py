"""A prorated fee line carries its share of its period (InvoiceLine.share), and
the writer prints it: lines written before the column get, from migration
invoices 0028, the share the writer used to read back out of their quantity,
so they print as they did."""

import importlib
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.apps import apps

from billing.invoicing.close import periods_close
from billing.models import Subscription
from billing.subscriptions.lifecycle import subscription_change_plan, subscription_set_seats
from invoices.models import CreditNoteLine, InvoiceLine
from tests.factories import CustomerFactory, PlanVersionFactory, published_version, subscribe

pytestmark = pytest.mark.django_db

NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)
NOV_24 = datetime(2026, 11, 24, tzinfo=UTC)
DEC_10 = datetime(2026, 12, 10, 12, tzinfo=UTC)
JAN_1 = datetime(2027, 1, 1, tzinfo=UTC)


def printed() -> dict[int, str]:
    return {
        line.pk: line.invoice.text.line_quantity(line.kind, line.quantity, share=line.share)
        for line in InvoiceLine.objects.select_related("invoice")
    }


def test_old_lines_get_the_share_they_were_printed_with():
    # given: a calendar subscription from 16 Nov in Tokyo (a prorated first month),
    # 3 seats to 5 on 24 Nov, a plan change on 10 Dec (its seats prorated), closed
    version = published_version("team", base_fee=D("20.00"), seat_price=D("10.00"))
    other = PlanVersionFactory(plan=version.plan, base_fee=D("30.00"), seat_price=D("12.00"))
    customer = CustomerFactory(timezone_name="Asia/Tokyo")
    subscription = subscribe(
        customer, version, NOV_16, seats=3, billing_anchor=Subscription.CALENDAR
    )
    subscription_set_seats(subscription=subscription, seats=5, at=NOV_24)
    periods_close(as_of=datetime(2026, 12, 2, tzinfo=UTC))
    subscription = Subscription.objects.get(pk=subscription.pk)
    subscription_change_plan(
        subscription=subscription, version=other, effective="immediate", at=DEC_10
    )
    periods_close(as_of=JAN_1)
    shared = InvoiceLine.objects.exclude(share=None)
    written = dict(shared.values_list("pk", "share"))
    before = printed()
    # every kind of prorated line is there: the first month's fees, the seat
    # change, the plan change's charge of fees and seats; its credit for the
    # unused December fees and seats is a credit note, its lines shared too
    kinds = set(shared.values_list("kind", flat=True))
    assert kinds == {"base_fee", "seats", "proration_charge"}
    credited = list(CreditNoteLine.objects.values_list("invoice_line__kind", "share"))
    assert sorted(kind for kind, _ in credited) == ["base_fee", "seats"]
    assert None not in {share for _, share in credited}
    assert any("seats ×" in text for text in before.values())  # noqa: RUF001

    # when: the lines lose their share, as lines written before the column, and
    # the migration fills it
    InvoiceLine.objects.update(share=None)
    migration = importlib.import_module("invoices.migrations.0028_line_share")
    migration.shares_fill(apps, None)

    # then: each has the share it was written with, and prints as it did
    assert dict(InvoiceLine.objects.exclude(share=None).values_list("pk", "share")) == written
    assert printed() == before
