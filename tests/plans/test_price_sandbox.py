"""Try prices: a version's invoice for quantities typed in, rated and taxed by the
code the period close bills with, to the cent; bad input is an error on its
field; it writes nothing."""

import re
from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import translation

from billing.invoicing.close import periods_close
from billing.simulation.sandbox import sandbox_invoice
from billing.usage.ingestion import events_ingest
from customers.services import customer_create
from invoices.models import Invoice
from plans import rating
from plans.admin.price_sandbox import invoice_rows, shown_quantity
from plans.models import PlanVersion, PriceSimulation, PriceTier
from plans.pricing import PricingSpec, TierSpec
from plans.selectors import version_spec
from plans.services import plan_version_copy_as_draft, tax_rate_create
from plans.taxes import tax_lines
from plans.validation import ChargeSpec
from tests.factories import MeterFactory, published_version, subscribe

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


def usd(text: str) -> str:
    return f"{text} USD"


@pytest.fixture
def pro(db):
    """49.00 a month, 12.50 a seat; LLM tokens: 1,000 included, then 0.002 up to
    1,000,000 and 0.0015 above."""
    MeterFactory(code="llm_tokens", name="LLM tokens", aggregation="sum", value_property="tokens")
    return published_version(
        "pro",
        base_fee=D("49.00"),
        seat_price=D("12.50"),
        charges=(
            ChargeSpec(
                "llm_tokens",
                "overage",
                D(1000),
                pricing=PricingSpec(
                    "graduated",
                    tiers=(TierSpec(D(1000000), D("0.002")), TierSpec(None, D("0.0015"))),
                ),
            ),
        ),
    )


@pytest.fixture
def sales_tax(db):
    return tax_rate_create(code="us_ca", name="Sales tax", percentage=D("8.25"))


def test_1_500_000_tokens_cost_what_the_close_bills(pro, sales_tax):
    # given: what the sandbox says of 1,500,000 tokens and 3 seats in November
    draft = plan_version_copy_as_draft(version=pro)
    spec = version_spec(version=draft)
    quantities = {"llm_tokens": D(1500000)}
    tried = sandbox_invoice(
        draft,
        spec,
        quantities=quantities,
        seats=3,
        start=NOV_1,
        end=DEC_1,
        tax_rate=sales_tax,
    )

    # then: by hand, 49.00 + 3 x 12.50 + 1,000,000 x 0.002 + 499,000 x 0.0015 = 2,835.00,
    # and 8.25 % of it is 233.8875, rounded half up to 233.89
    assert [(line.description, line.amount) for line in tried.lines] == [
        ("Pro (Nov 2026)", D("49.00")),
        ("3 seats (Nov 2026)", D("37.50")),
        ("LLM tokens over 1,000 included: tier up to 1,000,000 past the included", D("2000.00")),
        ("LLM tokens over 1,000 included: tier above 1,000,000 past the included", D("748.50")),
    ]
    assert (tried.subtotal, [t.amount for t in tried.taxes], tried.total) == (
        D("2835.00"),
        [D("233.89")],
        D("3068.89"),
    )
    # and the rating the close calls says the same for the same quantities
    rated = rating.fixed_lines(
        spec, plan_name="Pro", seats=3, label="Nov 2026"
    ) + rating.usage_and_true_up(spec, quantities=quantities)
    assert [line.amount for line in rated] == [line.amount for line in tried.lines]
    taxes = tax_lines(rates=[sales_tax], taxable=D("2835.00"), currency="USD")
    assert [t.amount for t in taxes] == [D("233.89")]

    # when: a customer taxed at the rate uses as much on the published version,
    # and November closes
    acme = customer_create(external_id="acme", name="Acme", currency="USD", tax_rates=["us_ca"])
    subscribe(acme, pro, start=NOV_1, seats=3)
    result = events_ingest(
        events=[
            {
                "id": "e1",
                "customer": "acme",
                "event_name": "llm_tokens",
                "timestamp": "2026-11-10T12:00:00+00:00",
                "properties": {"tokens": 1500000},
            }
        ],
        now=DEC_1,
    )
    assert not result.rejected
    periods_close(as_of=DEC_1)

    # then: its invoice (November's usage, December's fees in advance) is the same
    invoice = Invoice.objects.get(reason=Invoice.PERIOD)
    assert sorted(line.amount for line in invoice.lines.all()) == sorted(
        line.amount for line in tried.lines
    )
    assert (invoice.subtotal, invoice.tax, invoice.total) == (
        D("2835.00"),
        D("233.89"),
        D("3068.89"),
    )


def viewer_client(client, *codenames: str):
    user = User.objects.create_user("fin", password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


def test_the_page_shows_the_invoice_and_writes_nothing(pro, sales_tax, client):
    draft = plan_version_copy_as_draft(version=pro)
    client = viewer_client(client, "view_planversion", "run_pricesimulation")
    url = f"/admin/plans/planversion/{draft.pk}/try-prices/"

    # the form first: one interval from today by default
    form = client.get(url)
    assert form.status_code == 200
    assert form.context["form"]["period_start"].initial == date.today()
    assert f"/admin/plans/pricesimulation/simulate/?version={draft.pk}" in form.content.decode()
    assert (
        '<p id="tiers-past-included">LLM tokens: the tiers count the units past the included '
        "ones (with 1,000 included, a tier up to 5,000 ends at 6,000 units used).</p>"
    ) in form.content.decode()

    page = client.get(
        url,
        {
            "quantity_0": "1500000",
            "seats": "3",
            "period_start": "2026-11-01",
            "period_end": "2026-12-01",
            "tax_rate": sales_tax.pk,
        },
    )

    assert page.status_code == 200
    html = page.content.decode()
    assert "Invoice for Nov 2026" in html
    assert f'<td class="amount">{usd("2,000.00")}</td>' in html
    assert f'<td class="amount">{usd("748.50")}</td>' in html
    assert f"Sales tax 8.25% on {usd('2,835.00')}" in html
    assert (
        f'<tr class="total" id="sandbox-total"><td colspan="3">Total</td>'
        f'<td class="amount">{usd("3,068.89")}</td></tr>'
    ) in html
    assert not re.search(r"\d\.\d*00000", html), "a raw decimal on the page"
    assert Invoice.objects.count() == 0 and PriceSimulation.objects.count() == 0
    assert PlanVersion.objects.get(pk=draft.pk).charges.count() == 1


def test_a_price_per_million_tokens_is_tried_as_the_close_bills_it(db):
    # given: tokens at 2.50 per 1,000,000 beyond 1,000,000 included
    MeterFactory(code="llm_tokens", name="LLM tokens", aggregation="sum", value_property="tokens")
    pricing = PricingSpec("per_unit", unit_price=D("2.50"), per=D(1_000_000))
    version = published_version(
        "tokens", charges=(ChargeSpec("llm_tokens", "overage", D(1_000_000), pricing=pricing),)
    )
    spec = version_spec(version=version)
    quantities = {"llm_tokens": D(1_250_000)}

    # when
    tried = sandbox_invoice(
        version, spec, quantities=quantities, seats=0, start=NOV_1, end=DEC_1, tax_rate=None
    )

    # then: 250,000 x 2.50 / 1,000,000 = 0.625, rounded once to 0.63, as the rating says
    (line,) = tried.lines
    assert (line.quantity, line.unit_price, line.per, line.amount) == (
        D(250_000),
        D("2.50"),
        D(1_000_000),
        D("0.63"),
    )
    assert [x.amount for x in rating.usage_and_true_up(spec, quantities=quantities)] == [D("0.63")]
    assert invoice_rows(tried, "USD")["lines"][0]["unit_price"] == f"{usd('2.50')} per 1M"


def test_a_shorter_period_prorates_the_fixed_fees(pro):
    spec = version_spec(version=pro)
    tried = sandbox_invoice(
        pro,
        spec,
        quantities={"llm_tokens": D(0)},
        seats=1,
        start=datetime(2026, 11, 16, tzinfo=UTC),
        end=DEC_1,
        tax_rate=None,
    )
    # 15 of 30 days: half the base fee and half a seat
    assert [line.amount for line in tried.lines] == [D("24.50"), D("6.25")]
    assert tried.total == D("30.75")


def test_a_prorated_quantity_is_shown_to_four_digits_and_marked_rounded():
    assert shown_quantity(D("13") / D("30")) == "≈ 0.4333"
    assert shown_quantity(D("2") / D("3")) == "≈ 0.6667"  # half up
    assert shown_quantity(D("0.5000000000")) == "0.5"
    assert shown_quantity(D("0.00001")) == "0.00001"
    assert shown_quantity(D("1500000")) == "1,500,000"
    assert shown_quantity(D("1234.56789")) == "1,234.56789"


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("quantity_0", "-5", "Cannot be negative."),
        ("quantity_0", "lots", "Type a number like 1,234.50."),
        ("seats", "-1", "Cannot be negative."),
        ("period_end", "2026-10-31", "The period must end after it starts."),
        (
            "period_end",
            "2026-12-02",
            "A period is at most one billing interval: end by 1 Dec 2026.",
        ),
        ("period_start", "someday", "Enter a valid date."),
    ],
)
def test_bad_input_is_an_error_on_its_field(pro, client, field, value, error):
    client = viewer_client(client, "view_planversion")
    data = {
        "quantity_0": "1000",
        "seats": "1",
        "period_start": "2026-11-01",
        "period_end": "2026-12-01",
        field: value,
    }

    page = client.get(f"/admin/plans/planversion/{pro.pk}/try-prices/", data)

    assert page.status_code == 200
    assert page.context["form"].errors == {field: [error]}
    assert page.context["result"] is None


def test_trying_prices_needs_view_permission(pro, client):
    client.force_login(User.objects.create_user("nobody", password="x", is_staff=True))
    assert client.get(f"/admin/plans/planversion/{pro.pk}/try-prices/").status_code == 403


def test_the_tier_form_says_up_to_counts_past_the_included_units():
    field = PriceTier._meta.get_field("up_to")

    assert str(field.help_text) == (
        "Counts the units past the charge's included ones: with 1,000 included, a tier "
        "up to 5,000 ends at 6,000 units used. Inclusive; empty for the last, open tier."
    )
    with translation.override("fr"):
        assert str(field.help_text).startswith("Compte les unités après celles incluses")
    with translation.override("de"):
        assert str(field.help_text).startswith("Zählt die Einheiten nach den inklusiven")
