"""Commits in the admin (issue 52): Finance signs one for a customer through a
form and the confirmation page stating the invoice and the schedule; a refusal
comes back on the form in words with nothing written; a commit's page shows its
access (rollover with its expiry in the customer's zone) and its ledger, to
view-only users too."""

from datetime import UTC, datetime
from decimal import Decimal as D
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client

from billing.invoicing.close import periods_close
from config.models import UserLanguage
from customers.services import customer_create
from invoices.models import Invoice
from tests.factories import subscribe
from tests.wallets.test_commits import (  # noqa: F401 (the catalog fixture)
    S27_PREPAID,
    access_blocks,
    catalog,
    customer_on_plan,
    movements,
    post_usage,
    sign,
)
from wallets.commit_models import Commit

# The S27 catalog: AI plan, meters llm_tokens (1.00 per 1,000) and storage.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_5 = datetime(2026, 11, 5, tzinfo=UTC)
SIGN_URL = "/admin/wallets/commit/sign/"


def role_client(role: str, language: str = "") -> Client:
    call_command("setup_roles", stdout=StringIO(), stderr=StringIO())
    user = User.objects.create_user(role.lower(), password="pw-123456789", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    if language:
        UserLanguage.objects.create(user=user, language=language)
    client = Client()
    client.force_login(user)
    return client


def prepaid_form(**changes) -> dict:
    return {
        "billing": "prepaid",
        "amount": "12,000.00",
        "currency": "USD",
        "starts_at": NOV_1.isoformat(),
        "periods": "12",
        "access": "per_period",
        "applies_to": ["llm_tokens"],
        "overage_multiplier": "1.10",
        "rollover_percent": "50",
        "rollover_periods": "3",
    } | changes


def text_of(response) -> str:
    return response.content.decode()


def test_finance_signs_a_prepaid_commit_through_the_confirmation():
    customer, _subscription = customer_on_plan("acme")
    finance = role_client("Finance")
    url = f"{SIGN_URL}?customer={customer.pk}"

    with time_machine.travel(NOV_5, tick=False):
        # The customer's page links to the form, which is prefilled with the currency.
        page = finance.get(f"/admin/customers/customer/{customer.pk}/change/")
        assert url in text_of(page)
        form = finance.get(url)
        assert form.status_code == 200
        assert form.context["form"]["currency"].value() == "USD"
        assert (NOV_1.isoformat(), "1 Nov 2026 (UTC), the current period") in form.context[
            "form"
        ].fields["starts_at"].choices

        # when: the form is sent, the confirmation says what will happen
        shown = finance.post(url, prepaid_form())

        # then: the invoice and the schedule, and nothing written yet
        assert shown.status_code == 200
        sentences = shown.context["confirmation"].consequences
        assert "An invoice of 12,000.00 USD (plus tax) is issued now, for the whole commit." in (
            sentences
        )
        assert sentences[0] == (
            "Acme (acme) commits to 12,000.00 USD for 1 Nov 2026 – 31 Oct 2027 (UTC): 12 periods "  # noqa: RUF001
            "of its subscription to AI."
        )
        assert any(s.startswith("Rollover: at each period's end, 50% ") for s in sentences)
        assert "Usage beyond it is billed at its price times 1.1." in sentences
        schedule = shown.context["schedule"]
        assert len(schedule) == 12
        assert schedule[0] == {"term": "Nov 2026 (UTC)", "amount": "1,000.00 USD"}
        assert schedule[-1] == {"term": "Oct 2027 (UTC)", "amount": "1,000.00 USD"}
        assert not Commit.objects.exists()
        assert not Invoice.objects.filter(reason=Invoice.COMMIT).exists()

        # when: confirmed
        done = finance.post(url, prepaid_form(confirmed="yes"))

    # then: the commit, its twelve access rows and its invoice
    commit = Commit.objects.get(customer=customer)
    assert done.status_code == 302
    assert done.url == f"/admin/wallets/commit/{commit.pk}/change/"
    assert (commit.amount, commit.periods, commit.overage_multiplier) == (
        D("12000.00"),
        12,
        D("1.10"),
    )
    assert (commit.rollover_percent, commit.rollover_periods) == (D("50"), 3)
    assert commit.applies_to == ["llm_tokens"]
    assert [a.amount for a in access_blocks(commit)] == [D("1000.00")] * 12
    assert (commit.invoice.reason, commit.invoice.total) == (Invoice.COMMIT, D("12000.00"))
    # and the commit's page shows it to Finance, available now 1,000.00
    with time_machine.travel(NOV_5, tick=False):
        detail = text_of(finance.get(done.url))
    assert commit.invoice.number in detail
    assert "1,000.00 USD" in detail


def test_a_postpaid_confirmation_states_the_true_up_at_the_terms_end():
    customer, _subscription = customer_on_plan("beta")
    form = {
        "billing": "postpaid",
        "amount": "6000",
        "currency": "USD",
        "starts_at": NOV_1.isoformat(),
        "periods": "6",
        "access": "per_period",  # the radio's default: a postpaid commit has none
    }
    with time_machine.travel(NOV_5, tick=False):
        shown = role_client("Finance").post(f"{SIGN_URL}?customer={customer.pk}", form)

    sentences = shown.context["confirmation"].consequences
    assert sentences[1:] == [
        "No invoice now: usage of every meter is billed as usual each period and counted "
        "toward the commit.",
        "At the term's end (30 Apr 2027), if less than 6,000.00 USD was counted, a true-up "
        "invoice bills the difference.",
    ]
    assert shown.context["schedule"] == []
    assert not Commit.objects.exists()


def test_amounts_are_read_as_the_user_types_them():
    customer, _subscription = customer_on_plan("acme")
    url = f"{SIGN_URL}?customer={customer.pk}"
    with time_machine.travel(NOV_5, tick=False):
        # An English "1,50" is asked about, never read as 150.
        english = role_client("Finance").post(url, prepaid_form(amount="1,50"))
        assert english.context["form"].errors["amount"]
        assert "confirmation" not in english.context
        # A German user's "12.000,50" is 12,000.50.
        german = Client()
        german.force_login(User.objects.get(username="finance"))
        UserLanguage.objects.create(user=User.objects.get(username="finance"), language="de")
        german.post(url, prepaid_form(amount="12.000,50", overage_multiplier="1,1"))
        german.post(
            url, prepaid_form(amount="12.000,50", overage_multiplier="1,1", confirmed="yes")
        )
    commit = Commit.objects.get()
    assert (commit.amount, commit.overage_multiplier) == (D("12000.50"), D("1.1"))


def test_a_refusal_is_shown_in_words_and_nothing_is_written():
    customer, _subscription = customer_on_plan("acme")
    finance = role_client("Finance")
    url = f"{SIGN_URL}?customer={customer.pk}"

    with time_machine.travel(NOV_5, tick=False):
        # A currency other than the subscription's: refused on the form.
        wrong = finance.post(url, prepaid_form(currency="eur"))
        # Rollover on up-front access: refused on the rollover field.
        upfront = finance.post(url, prepaid_form(access="upfront"))
    assert wrong.context["form"].errors["currency"] == [
        "A commit is in its subscription's currency: USD."
    ]
    assert upfront.context["form"].errors["rollover_percent"] == [
        "Up-front access is the whole term's already: nothing rolls over."
    ]
    assert not Commit.objects.exists()

    # A commit signed meanwhile (through the API): the confirmation's button is
    # refused in words, and nothing more is written.
    assert sign("acme", S27_PREPAID, at=NOV_5).status_code == 201
    with time_machine.travel(NOV_5, tick=False):
        late = finance.post(url, prepaid_form(confirmed="yes"))
    assert late.status_code == 200
    assert late.context["form"].non_field_errors() == [
        "A customer has one commit at a time: end or cancel the other first."
    ]
    assert Commit.objects.count() == 1
    assert Invoice.objects.filter(reason=Invoice.COMMIT).count() == 1


def test_view_only_users_see_commits_and_cannot_sign():
    customer, _subscription = customer_on_plan("acme")
    assert sign("acme", S27_PREPAID, at=NOV_5).status_code == 201
    commit = Commit.objects.get()
    support = role_client("Support")

    with time_machine.travel(NOV_5, tick=False):
        listed = support.get("/admin/wallets/commit/")
        page = support.get(f"/admin/wallets/commit/{commit.pk}/change/")
        refused = support.get(f"{SIGN_URL}?customer={customer.pk}")
        posted = support.post(f"{SIGN_URL}?customer={customer.pk}", prepaid_form(confirmed="yes"))
        customer_page = support.get(f"/admin/customers/customer/{customer.pk}/change/")

    assert listed.status_code == 200
    assert "Sign a commit" not in text_of(listed)
    row = text_of(listed)
    for cell in ("12,000.00 USD", "1 Nov 2026 – 31 Oct 2027 (UTC)", "Per period", "Active"):  # noqa: RUF001
        assert cell in row
    assert page.status_code == 200
    assert (refused.status_code, posted.status_code) == (403, 403)
    assert Commit.objects.count() == 1
    assert f"/admin/wallets/commit/{commit.pk}/change/" in text_of(customer_page)
    assert SIGN_URL not in text_of(customer_page)


def test_the_commit_page_shows_rollover_with_its_expiry_in_the_customers_zone():
    # given: a customer in Paris with a commit whose rollover lasts one period
    paris = ZoneInfo("Europe/Paris")
    start = datetime(2026, 11, 1, tzinfo=paris)
    customer = customer_create(
        external_id="paris", name="Paris", currency="USD", timezone_name="Europe/Paris"
    )
    subscribe(customer, "ai", start=start)
    body = S27_PREPAID | {
        "starts_at": start.isoformat(),
        "ends_at": datetime(2027, 11, 1, tzinfo=paris).isoformat(),
        "rollover": {"percent": "50", "expires_after_periods": 1},
    }
    assert sign("paris", body, at=start).status_code == 201
    # and 600.00 of November drawn: 200.00 rolls over to the end of December
    post_usage("paris", datetime(2026, 11, 10, tzinfo=UTC), tokens=600_000)
    periods_close(as_of=datetime(2026, 12, 1, tzinfo=paris))
    commit = Commit.objects.get()
    (rollover,) = access_blocks(commit, "rollover")
    assert rollover.expires_at == datetime(2027, 1, 1, tzinfo=paris)

    # when: a view-only user opens the commit's page in December
    with time_machine.travel(datetime(2026, 12, 3, tzinfo=UTC), tick=False):
        page = text_of(role_client("Support").get(f"/admin/wallets/commit/{commit.pk}/change/"))

    # then: the rollover block with what is left and its expiry in Paris time (not
    # 31 Dec 2026, 23:00 UTC), the commit's invoice, and the ledger's drawdown with
    # the usage period it paid for
    assert "Rollover" in page
    assert "200.00 USD" in page
    assert "1 Jan 2027, 00:00 (Europe/Paris)" in page
    assert "-600.00 USD" in page
    assert f">{commit.invoice.number}</a>" in page
    assert "Nov 2026 (Europe/Paris)" in page
    assert "31 Dec 2026" not in page
    assert len(movements(commit, "drawdown")) == 1
    # available now: December's 1,000.00 and the 200.00 rollover
    assert "1,200.00 USD" in page


def test_a_french_user_types_and_reads_the_confirmation_in_french():
    customer, _subscription = customer_on_plan("acme")
    finance = role_client("Finance", language="fr")
    url = f"{SIGN_URL}?customer={customer.pk}"
    with time_machine.travel(NOV_5, tick=False):
        # "1,50" is one and a half in French: never 150
        shown = finance.post(
            url, prepaid_form(amount="12 000,00", overage_multiplier="1,5", periods="3")
        )
        sentences = shown.context["confirmation"].consequences
        assert sentences[1] == (
            "Une facture de 12\xa0000,00 USD (plus taxes) est émise maintenant, pour tout "
            "l’engagement."  # noqa: RUF001
        )
        assert sentences[4] == "L’usage au-delà est facturé à son prix multiplié par 1,5."  # noqa: RUF001
        assert shown.context["schedule"][0] == {
            "term": "nov. 2026 (UTC)",
            "amount": "4\xa0000,00 USD",
        }
        assert not Commit.objects.exists()
        finance.post(
            url,
            prepaid_form(
                amount="12 000,00", overage_multiplier="1,5", periods="3", confirmed="yes"
            ),
        )
    commit = Commit.objects.get()
    assert (commit.amount, commit.overage_multiplier, commit.periods) == (
        D("12000.00"),
        D("1.5"),
        3,
    )
