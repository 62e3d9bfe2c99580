"""The written-out reads of the hot paths (common.rawsql): values come out of them
exactly as the ORM gives them, on SQLite and on PostgreSQL, and the instances
they build load any other field on access."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from billing.subscriptions.lifecycle import subscription_cancel
from billing.usage.live import _LIVE_PARTS, customer_with_live_subscription
from billing.usage.reads import subscription_live
from common import rawsql
from customers.services import customer_create
from tests.factories import subscribe
from tests.wallets.support import build_catalog
from wallets.ledger import credits_grant
from wallets.models import CreditBlock
from wallets.purchases import money_top_up
from wallets.selectors import money_drawn, wallet_usable_balance

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 21, 14, 30, tzinfo=UTC)


@pytest.fixture
def acme(db):
    return customer_create(
        external_id="acme", name="Acme Inc", currency="USD", spend_limit=D("1234.56")
    )


def test_rows_give_what_the_orm_gives(acme):
    # given blocks with fractional remainders and instants with microseconds
    for credits, expires in [
        (D("12.3456789012"), NOW + timedelta(days=3, microseconds=7)),
        (D("0.0000000001"), None),
    ]:
        credits_grant(customer=acme, credits=credits, expires_at=expires, now=NOW)
    names = ("remaining", "expires_at", "effective_at", "priority")
    fields = tuple(CreditBlock._meta.get_field(name) for name in names)

    # when
    found = rawsql.rows(
        "SELECT remaining, expires_at, effective_at, priority FROM wallets_creditblock "
        "WHERE effective_at <= %s ORDER BY id",
        [NOW],
        fields,
    )

    # then: equal values of equal types, aware datetimes included
    expected = list(CreditBlock.objects.order_by("id").values_list(*names))
    assert found == expected
    assert [tuple(map(type, row)) for row in found] == [tuple(map(type, row)) for row in expected]
    assert found[0][0] == D("12.3456789012")
    assert found[0][1].tzinfo is not None


def test_the_usable_balance_and_money_drawn_sum_exactly(acme):
    credits_grant(customer=acme, credits=D("0.1"), now=NOW)
    credits_grant(customer=acme, credits=D("0.2"), now=NOW)
    # a block that expired, and one that takes effect later, are not usable
    credits_grant(customer=acme, credits=D(5), expires_at=NOW, now=NOW - timedelta(days=1))
    credits_grant(customer=acme, credits=D(7), effective_at=NOW + timedelta(seconds=1), now=NOW)
    money_top_up(customer=acme, amount=D("10.00"), currency="USD", now=NOW)

    assert wallet_usable_balance(customer_id=acme.pk, kind="credits", now=NOW) == D("0.3")
    assert wallet_usable_balance(customer_id=acme.pk, kind="money", currency="USD", now=NOW) == D(
        "10.00"
    )
    assert money_drawn(customer_id=acme.pk, currency="USD", start=NOV_1, end=NOW) == 0


def test_a_customer_without_a_live_subscription(acme):
    assert customer_with_live_subscription(external_id="nobody") == (None, None)

    customer, subscription = customer_with_live_subscription(external_id="acme")

    assert subscription is None
    assert (customer.pk, customer.currency, customer.spend_limit) == (acme.pk, "USD", D("1234.56"))
    # a field the query does not read loads on access
    assert customer.name == "Acme Inc"


def test_a_live_subscription_with_its_version_and_plan(acme):
    build_catalog()
    subscribe(acme, "ai_assistant", NOV_1)
    expected = subscription_live(customer_id=acme.pk)

    customer, subscription = customer_with_live_subscription(external_id="acme")

    assert subscription.pk == expected.pk
    assert subscription.customer is customer
    assert (
        subscription.current_period_start,
        subscription.current_period_end,
        subscription.started_at,
        subscription.cancel_at_period_end,
        subscription.seats,
    ) == (
        expected.current_period_start,
        expected.current_period_end,
        expected.started_at,
        expected.cancel_at_period_end,
        expected.seats,
    )
    assert (subscription.version.pk, subscription.version.interval) == (
        expected.version.pk,
        expected.version.interval,
    )
    assert subscription.version.plan.name == expected.version.plan.name
    # each instance holds the fields the query reads, with the ORM's values, and
    # defers the others, as `.only()` leaves them; they load on access
    made = (customer, subscription, subscription.version, subscription.version.plan)
    for instance, (_, fields) in zip(made, _LIVE_PARTS, strict=True):
        names = [f.attname for f in fields]
        orm = type(instance).objects.only(*names).get(pk=instance.pk)
        assert [getattr(instance, n) for n in names] == [getattr(orm, n) for n in names]
        assert instance.get_deferred_fields() == orm.get_deferred_fields() != set()
        assert (instance._state.adding, instance._state.db) == (False, "default")
    assert subscription.version.base_fee == expected.version.base_fee


def test_an_ended_subscription_is_not_live(acme):
    build_catalog()
    subscription = subscribe(acme, "ai_assistant", NOV_1)
    subscription_cancel(subscription=subscription, effective="immediate", at=NOW)

    customer, live = customer_with_live_subscription(external_id="acme")

    assert (customer.pk, live) == (acme.pk, None)


@pytest.mark.django_db
def test_every_process_cache_is_listed_and_cleared():
    """config.process_caches lists each cache a process keeps; clearing them all
    empties the ones that hold rows."""
    from billing.integrations.ingest import preview_buffer
    from billing.usage.closed_days import closed_days_cache
    from billing.usage.edge_cache import edge_cache
    from billing.usage.group_limits import group_value_cache
    from billing.usage.ingestion import customer_cache
    from billing.usage.metering import (
        MeterDef,
        _combination_values,
        combination_values,
        meter_cache,
    )
    from billing.usage.reads import Tally
    from common.throttling import key_leases
    from config.process_caches import PROCESS_CACHES, process_caches_clear
    from customers import api_keys
    from plans import rate_card_pricing as rate_cards
    from plans.rate_card_pricing import RateSpec, card_rows

    names = [c.name for c in PROCESS_CACHES]
    assert len(names) == len(set(names)) == 17
    meter_cache.by_id()
    card = (RateSpec(),)
    assert card_rows(card)(()) == 0
    assert combination_values(MeterDef(1, "m", "e", "sum", "", "", (), group_by=("a", "b")), "")
    api_keys._key_cache["digest"] = (None, 0.0)
    customer_cache._ids["acme"] = (1, 0.0)
    edge_cache.put("key", {1: 1}, Tally())
    group_value_cache.put((1, 1, None, 0), {"gpt-4o"}, 1)
    closed_days_cache.put("key", {1: (None, 1)}, Tally())
    assert key_leases.take("key:1", 6000, 60)[0]
    assert key_leases._held
    for _ in range(2):
        rawsql.ran_before.note("key", {("SELECT 1", ()): ("SELECT 1", ())})
    assert rawsql.ran_before.ahead("key")
    preview_buffer._entries["litellm"] = [{"id": "call-1"}]

    process_caches_clear()

    assert api_keys._key_cache == {}
    assert customer_cache._ids == {}
    assert len(edge_cache) == len(closed_days_cache) == 0
    assert group_value_cache.get((1, 1, None, 0)) is None
    assert key_leases._held == {}
    assert rawsql.ran_before.ahead("key") == ()
    assert rate_cards._CARDS == {}
    assert _combination_values.cache_info().currsize == 0
    assert preview_buffer._entries == {}


def test_between_tests_the_caches_of_rows_are_cleared_and_the_constant_ones_kept():
    """What tests/conftest.py clears between tests: every cache that can go stale,
    not the PDF renderer, the time zones or the column converters."""
    from billing.usage.ingestion import customer_cache
    from config.process_caches import PROCESS_CACHES, process_caches_clear
    from invoices import pdf_renderer
    from plans import validation

    assert {c.name for c in PROCESS_CACHES if c.constant} == {
        "SQL converters",
        "time zones",
        "PDF renderer",
    }
    renderer = pdf_renderer.renderer()
    validation.available_timezones()
    customer_cache._ids["acme"] = (1, 0.0)

    process_caches_clear(also_constant=False)

    assert customer_cache._ids == {}
    assert pdf_renderer.renderer() is renderer
    assert validation.available_timezones.cache_info().currsize == 1

    process_caches_clear()

    assert pdf_renderer.renderer() is not renderer
    assert validation.available_timezones.cache_info().currsize == 0


def test_insert_writes_what_bulk_create_writes(acme):
    from invoices.models import Invoice, InvoiceLine

    # given: two invoices, their lines built alike, with many decimal places and JSON
    def invoice_and_lines(reason: str) -> tuple[Invoice, list[InvoiceLine]]:
        invoice = Invoice(
            customer=acme,
            reason=reason,
            currency="USD",
            period_start=NOV_1,
            period_end=NOW,
            customer_snapshot={"name": "Acme Inc", "tax_id": None},
            subtotal=D("12.34"),
            total=D("12.34"),
            created_at=NOW,
            written_at=NOW,
        )
        lines = [
            InvoiceLine(
                position=position,
                kind="usage",
                description=f"Prompts {position}",
                quantity=D("1234.5678901234"),
                unit_price=D("0.0000000001") if position else None,
                amount=D("12.34"),
                period_start=NOV_1 if position else None,
                period_end=NOW,
                breakdown={"by": "model", "groups": [{"value": None, "quantity": "1"}]},
            )
            for position in range(2)
        ]
        return invoice, lines

    orm, orm_lines = invoice_and_lines(Invoice.START)
    orm.save()
    for line in orm_lines:
        line.invoice = orm
    InvoiceLine.objects.bulk_create(orm_lines)
    fast, fast_lines = invoice_and_lines(Invoice.PERIOD)

    # when
    rawsql.insert([fast])
    for line in fast_lines:
        line.invoice = fast
    rawsql.insert(fast_lines)

    # then: ids set, and the rows read back equal but for their ids and reason
    assert fast.pk is not None and not fast._state.adding
    assert [line.pk for line in fast_lines] == sorted(line.pk for line in fast_lines)

    def read(invoice: Invoice) -> tuple:
        row = Invoice.objects.filter(pk=invoice.pk).values().get()
        lines = InvoiceLine.objects.filter(invoice=invoice).order_by("position").values()
        drop = ("id", "invoice_id", "reason")
        return (
            {k: v for k, v in row.items() if k not in drop},
            [{k: v for k, v in line.items() if k not in drop} for line in lines],
        )

    assert read(fast) == read(orm)
    assert InvoiceLine.objects.get(pk=fast_lines[1].pk).quantity == D("1234.5678901234")


def test_insert_splits_many_rows_into_statements_and_keeps_their_order(acme):
    from invoices.models import Invoice, InvoiceLine

    invoice = Invoice.objects.create(
        customer=acme,
        reason=Invoice.PERIOD,
        currency="USD",
        period_start=NOV_1,
        period_end=NOW,
        created_at=NOW,
    )
    lines = [
        InvoiceLine(
            invoice=invoice, position=p, kind="usage", description=f"L{p}", quantity=1, amount=D(p)
        )
        for p in range(6000)  # 12 columns a row: more than one statement's parameters
    ]
    rawsql.insert(lines)
    stored = dict(InvoiceLine.objects.filter(invoice=invoice).values_list("pk", "position"))
    assert [stored[line.pk] for line in lines] == list(range(6000))


def test_insert_refuses_a_model_a_save_receiver_listens_to(acme):
    from billing.models import Subscription

    # Subscription keeps an audit history (a post_save receiver): rows written
    # around it would be missing from the history.
    with pytest.raises(ValueError, match="save receivers"):
        rawsql.insert([Subscription(customer=acme)])


def test_update_saves_as_save_does_and_refuses_a_missing_row(acme):
    from django.db import DatabaseError, transaction

    from billing.models import Subscription

    # given
    build_catalog()
    subscription = subscribe(acme, "ai_assistant", NOV_1)
    rows = subscription.history.count()

    # when
    subscription.seats = 7
    subscription.usage_from = NOW
    rawsql.update(subscription, ("seats", "usage_from"))

    # then: written, with its audit row (post_save), the other fields untouched
    fresh = Subscription.objects.get(pk=subscription.pk)
    assert (fresh.seats, fresh.usage_from, fresh.status) == (7, NOW, subscription.status)
    assert subscription.history.count() == rows + 1
    assert subscription.history.order_by("-history_id").first().seats == 7

    # and a row that is gone is refused, as save(update_fields=...) refuses it
    subscription.pk = 987654
    with transaction.atomic(), pytest.raises(DatabaseError):
        rawsql.update(subscription, ("seats",))


# read_ahead: which statements a block sends ahead of its first (their rows are
# read in the block itself; tests/wallets/test_check_reads.py has the check's).


def read_block(key, *statements: tuple[str, list], ahead: bool = True) -> list:
    """A read_ahead block that runs `SELECT 0` first, then these; their rows."""
    with rawsql.read_ahead(key):
        rawsql.rows("SELECT 0", [], (None,))
        return [rawsql.rows(sql, params, (None,), ahead=ahead) for sql, params in statements]


@pytest.mark.django_db
def test_a_block_sends_ahead_what_its_last_two_blocks_both_ran():
    steady = ("SELECT %s + 1", [41])

    # the first block knows nothing to send ahead; the second, what the first ran
    # but not what the one before it ran (there was none)
    assert read_block("k", steady) == [[(42,)]]
    assert rawsql.ran_before.ahead("k") == ()
    assert read_block("k", steady) == [[(42,)]]

    # from the third on: the statement both ran, once however often it was asked
    assert rawsql.ran_before.ahead("k") == (("SELECT %s + 1", (41,)),)
    assert read_block("k", steady, steady) == [[(42,)], [(42,)]]
    assert rawsql.ran_before.ahead("k") == (("SELECT %s + 1", (41,)),)
    assert rawsql.ran_before.ahead("other key") == ()


@pytest.mark.django_db
def test_a_statement_whose_parameters_change_every_time_is_never_sent_ahead():
    for second in range(5):
        read_block("k", ("SELECT %s + 0", [second]), ("SELECT 7", []))

        assert rawsql.ran_before.ahead("k") == (() if second == 0 else (("SELECT 7", ()),))


@pytest.mark.django_db
def test_parameters_equal_in_python_but_not_in_sql_are_other_statements():
    # 1, True and 1.0 are equal in Python; Decimal 1 and 1.0 too, not their scales
    for _ in range(3):
        read_block("k", ("SELECT %s", [1]), ("SELECT %s", [D("1.0")]))
    read_block("k", ("SELECT %s", [True]), ("SELECT %s", [D("1")]))

    assert rawsql.ran_before.ahead("k") == ()


@pytest.mark.django_db
def test_only_statements_marked_ahead_are_sent_ahead():
    for _ in range(3):
        read_block("k", ("SELECT 7", []), ahead=False)

    assert rawsql.ran_before.ahead("k") == ()


@pytest.mark.django_db
def test_a_block_that_fails_sends_nothing_ahead_of_the_next_two():
    for _ in range(3):
        read_block("k", ("SELECT 7", []))
    assert rawsql.ran_before.ahead("k") != ()

    with pytest.raises(ZeroDivisionError), rawsql.read_ahead("k"):
        rawsql.rows("SELECT 0", [], (None,))
        raise ZeroDivisionError

    assert rawsql.ran_before.ahead("k") == ()
    read_block("k", ("SELECT 7", []))
    assert rawsql.ran_before.ahead("k") == ()
    # a key that was not known before its failing block is not remembered at all
    with pytest.raises(ZeroDivisionError), rawsql.read_ahead("new"):
        raise ZeroDivisionError
    assert "new" not in rawsql.ran_before._blocks
    with (
        rawsql.read_ahead("k"),
        pytest.raises(RuntimeError, match="do not nest"),
        rawsql.read_ahead("k"),
    ):
        pass
