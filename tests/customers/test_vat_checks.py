"""VAT numbers checked with VIES (customers.vat_checks): a local HTTP server stands
in for the VIES REST API and records what it was sent. Every answer is stored
with its consultation id (valid, invalid, unavailable, timed out); a number whose
form is wrong is refused before any request, and without a checker a check is a
409. The fake checker, the API's scopes and the admin's button (Finance only)."""

import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from common.errors import InvalidRequest
from config.user_language import user_language_set
from customers.models import BillingEntity, Customer, VatCheck
from customers.vat_checks import FakeVatChecker, ViesChecker, vat_id_check
from tests.factories import CustomerFactory, api_client

pytestmark = pytest.mark.django_db

NOV_20 = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
CHECKS = "/api/v1/customers/acme/vat-check"
SELLER_VAT = "DE811907980"
BUYER_VAT = "FR40303265045"
VALID = {
    "countryCode": "FR",
    "vatNumber": "40303265045",
    "requestDate": "2026-11-20T10:30:00.000Z",
    "valid": True,
    "requestIdentifier": "WAPIAAAAZ3xk1abc",
    "name": "SA ACME FRANCE",
    "address": "1 RUE DE LA PAIX\n75002 PARIS",
}


class Vies:
    """A stand-in for the VIES REST API: answers `answer` (status, JSON body) after
    `delay` seconds, and keeps each request's path and JSON body."""

    def __init__(self):
        self.answer: tuple[int, dict] = (200, VALID)
        self.delay = 0.0
        self.received: list[tuple[str, dict]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                stub.received.append((self.path, json.loads(self.rfile.read(length))))
                time.sleep(stub.delay)
                status, body = stub.answer
                payload = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up waiting (the timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/rest-api"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def vies(settings):
    stub = Vies()
    settings.BILLING_VAT_CHECKER = "vies"
    settings.BILLING_VIES_URL = stub.url
    yield stub
    stub.close()


@pytest.fixture
def acme(db):
    BillingEntity.objects.filter(is_default=True).update(tax_id=SELLER_VAT)
    return CustomerFactory(external_id="acme", name="Acme", tax_id=BUYER_VAT)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOV_20, tick=False):
        yield


def stored(check: VatCheck) -> dict:
    return {
        field: getattr(check, field)
        for field in (
            "vat_id",
            "valid",
            "name",
            "address",
            "consultation_id",
            "requester_vat_id",
            "checker",
            "checked_at",
            "error",
        )
    }


def test_a_valid_number_is_stored_with_its_consultation_id(api, vies, acme):
    # when
    made = api.post(CHECKS)

    # then
    assert made.status_code == 201, made.content
    assert vies.received == [
        (
            "/rest-api/check-vat-number",
            {
                "countryCode": "FR",
                "vatNumber": "40303265045",
                "requesterMemberStateCode": "DE",
                "requesterNumber": "811907980",
            },
        )
    ]
    assert made.json() == {
        "vat_id": BUYER_VAT,
        "valid": True,
        "name": "SA ACME FRANCE",
        "address": "1 RUE DE LA PAIX\n75002 PARIS",
        "consultation_id": "WAPIAAAAZ3xk1abc",
        "checked_at": "2026-11-20T10:30:00Z",
        "checker": "vies",
        "error": "",
    }
    check = VatCheck.objects.get()
    assert check.customer == acme and check.billing_entity is None
    assert stored(check) == {
        "vat_id": BUYER_VAT,
        "valid": True,
        "name": "SA ACME FRANCE",
        "address": "1 RUE DE LA PAIX\n75002 PARIS",
        "consultation_id": "WAPIAAAAZ3xk1abc",
        "requester_vat_id": SELLER_VAT,
        "checker": "vies",
        "checked_at": NOV_20,
        "error": "",
    }
    assert api.get("/api/v1/customers/acme").json()["vat_check"] == made.json()


def test_an_invalid_number_is_stored_invalid_with_what_vies_did_not_give(api, vies, acme):
    vies.answer = (
        200,
        {**VALID, "valid": False, "name": "---", "address": "---", "requestIdentifier": "WAPI2"},
    )

    made = api.post(CHECKS)

    assert made.status_code == 201
    body = made.json()
    assert (body["valid"], body["name"], body["address"]) == (False, "", "")
    assert body["consultation_id"] == "WAPI2"
    assert stored(VatCheck.objects.get())["valid"] is False


def test_a_member_state_unavailable_is_stored_as_no_answer(api, vies, acme):
    vies.answer = (200, {"userError": "MS_UNAVAILABLE", "valid": False})

    made = api.post(CHECKS)

    assert made.status_code == 201
    assert (made.json()["valid"], made.json()["error"]) == (None, "MS_UNAVAILABLE")
    check = VatCheck.objects.get()
    assert (check.valid, check.error, check.consultation_id) == (None, "MS_UNAVAILABLE", "")


def test_an_error_answered_with_an_http_error_is_stored_with_its_code(api, vies, acme):
    vies.answer = (
        500,
        {
            "actionSucceed": False,
            "errorWrappers": [{"error": "MS_MAX_CONCURRENT_REQ", "message": "busy"}],
        },
    )

    made = api.post(CHECKS)

    assert made.status_code == 201
    assert (made.json()["valid"], made.json()["error"]) == (None, "MS_MAX_CONCURRENT_REQ: busy")


def test_a_timeout_is_stored_as_no_answer_not_a_500(api, vies, acme, monkeypatch):
    monkeypatch.setattr(ViesChecker, "TIMEOUT_SECONDS", 0.3)
    vies.delay = 1.0

    made = api.post(CHECKS)

    assert made.status_code == 201
    check = VatCheck.objects.get()
    assert (check.valid, check.error) == (None, "TIMEOUT: VIES did not answer in time")
    assert len(vies.received) == 1


def test_vies_unreachable_is_stored_as_no_answer(api, vies, acme, settings):
    vies.close()
    settings.BILLING_VIES_URL = vies.url

    made = api.post(CHECKS)

    assert made.status_code == 201
    assert made.json()["valid"] is None
    assert made.json()["error"].startswith("VIES unreachable: ")


@pytest.mark.parametrize(
    ("tax_id", "message"),
    [
        ("FR40303265046", "'FR40303265046': check digits do not match"),
        ("DE12", "'DE12' is not the form of a German VAT number"),
        ("GB980780684", "'GB980780684' is not an EU VAT number"),
        ("", "no VAT number to check"),
    ],
)
def test_a_number_of_the_wrong_form_is_refused_without_asking_vies(
    api, vies, acme, tax_id, message
):
    # Stored before its form was checked (an older row).
    Customer.objects.filter(pk=acme.pk).update(tax_id=tax_id)

    refused = api.post(CHECKS)

    assert refused.status_code == 400
    error = refused.json()["error"]
    assert list(error["fields"]) == ["vat_id"]
    assert error["fields"]["vat_id"][0].startswith(message)
    assert vies.received == []
    assert not VatCheck.objects.exists()


def test_without_a_checker_a_check_is_a_conflict(api, acme, settings):
    settings.BILLING_VAT_CHECKER = ""

    refused = api.post(CHECKS)

    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == (
        "no VAT number checker is configured (BILLING_VAT_CHECKER)"
    )
    assert not VatCheck.objects.exists()


def test_the_fake_checker_answers_valid_but_for_its_invalid_numbers(
    api, acme, settings, monkeypatch
):
    settings.BILLING_VAT_CHECKER = "fake"
    monkeypatch.setattr(FakeVatChecker, "consulted", 0)
    monkeypatch.setattr(FakeVatChecker, "INVALID_NUMBERS", {BUYER_VAT})

    invalid = api.post(CHECKS).json()
    monkeypatch.setattr(FakeVatChecker, "INVALID_NUMBERS", set())
    valid = api.post(CHECKS).json()

    assert (invalid["valid"], invalid["consultation_id"], invalid["checker"]) == (
        False,
        "FAKE-1",
        "fake",
    )
    assert (valid["valid"], valid["consultation_id"], valid["name"]) == (
        True,
        "FAKE-2",
        f"Holder of {BUYER_VAT}",
    )
    listed = api.get(CHECKS).json()["results"]
    assert [c["consultation_id"] for c in listed] == ["FAKE-2", "FAKE-1"]


def test_the_checks_are_listed_newest_first_and_the_detail_shows_the_latest(api, vies, acme):
    with time_machine.travel(datetime(2026, 11, 1, tzinfo=UTC), tick=False):
        api.post(CHECKS)
    vies.answer = (200, {**VALID, "requestIdentifier": "WAPI-LATER"})
    api.post(CHECKS)

    listed = api.get(CHECKS)

    assert listed.status_code == 200
    assert [(c["consultation_id"], c["checked_at"]) for c in listed.json()["results"]] == [
        ("WAPI-LATER", "2026-11-20T10:30:00Z"),
        ("WAPIAAAAZ3xk1abc", "2026-11-01T00:00:00Z"),
    ]
    assert api.get("/api/v1/customers/acme").json()["vat_check"]["consultation_id"] == (
        "WAPI-LATER"
    )
    customers = api.get("/api/v1/customers").json()["results"]
    assert [c["vat_check"]["consultation_id"] for c in customers] == ["WAPI-LATER"]


def test_a_customer_never_checked_shows_no_check(api, acme):
    assert api.get("/api/v1/customers/acme").json()["vat_check"] is None
    assert api.get(CHECKS).json() == {"results": []}


def test_a_check_needs_the_admin_scope_and_the_list_the_read_scope(vies, acme):
    refused = api_client("read").post(CHECKS)
    assert refused.status_code == 403
    assert "'admin'" in refused.json()["error"]["message"]
    assert not VatCheck.objects.exists()
    assert api_client("admin").get(CHECKS).status_code == 403

    assert api_client("admin").post(CHECKS).status_code == 201
    assert api_client("read").get(CHECKS).status_code == 200
    assert api_client("read").post("/api/v1/customers/nobody/vat-check").status_code == 403
    assert api_client("admin").post("/api/v1/customers/nobody/vat-check").status_code == 404


def test_a_billing_entity_is_checked_as_its_own_requester(vies, acme):
    entity = BillingEntity.objects.get(is_default=True)

    check = vat_id_check(billing_entity=entity, now=NOV_20)

    assert vies.received[0][1] == {
        "countryCode": "DE",
        "vatNumber": "811907980",
        "requesterMemberStateCode": "DE",
        "requesterNumber": "811907980",
    }
    assert (check.billing_entity, check.customer, check.valid) == (entity, None, True)


def test_without_a_seller_vat_number_vies_is_asked_without_a_requester(vies, acme):
    BillingEntity.objects.filter(is_default=True).update(tax_id="")

    check = vat_id_check(customer=Customer.objects.get(pk=acme.pk), now=NOV_20)

    assert vies.received[0][1] == {"countryCode": "FR", "vatNumber": "40303265045"}
    assert check.requester_vat_id == ""


def test_the_service_refuses_a_wrong_form_before_any_request(vies, acme):
    Customer.objects.filter(pk=acme.pk).update(tax_id="FR123")

    with pytest.raises(InvalidRequest) as refused:
        vat_id_check(customer=Customer.objects.get(pk=acme.pk), now=NOV_20)

    assert list(refused.value.fields) == ["vat_id"]
    assert vies.received == []


# The admin: the latest check on the page, the button to Finance.


def staff(role: str) -> User:
    call_command("setup_roles", stdout=StringIO())
    user = User.objects.create_user(username=role.lower(), is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def check_url(customer: Customer) -> str:
    return f"/admin/customers/customer/{customer.pk}/vat-check/"


def test_finance_checks_a_customer_from_its_page(client, vies, acme):
    client.force_login(staff("Finance"))
    page = client.get(f"/admin/customers/customer/{acme.pk}/change/")
    assert page.status_code == 200
    assert "Not checked yet." in page.content.decode()
    assert 'id="vat-check"' in page.content.decode()

    done = client.post(check_url(acme), follow=True)

    assert done.redirect_chain == [(f"/admin/customers/customer/{acme.pk}/change/", 302)]
    assert [str(m) for m in done.context["messages"]] == [
        "FR40303265045 is valid according to VIES (consultation id WAPIAAAAZ3xk1abc)."
    ]
    assert VatCheck.objects.get().consultation_id == "WAPIAAAAZ3xk1abc"
    shown = done.content.decode()
    assert "FR40303265045: valid, " in shown
    assert "Consultation id: WAPIAAAAZ3xk1abc" in shown


def test_the_admin_says_when_vies_could_not_answer(admin_client, vies, acme):
    vies.answer = (200, {"userError": "TIMEOUT"})

    done = admin_client.post(check_url(acme), follow=True)

    assert [str(m) for m in done.context["messages"]] == [
        "VIES could not answer for FR40303265045 (TIMEOUT): the check is recorded as "
        "unavailable; try again later."
    ]
    assert "FR40303265045: unavailable (no answer), " in done.content.decode()
    assert VatCheck.objects.get().valid is None


def test_the_admin_shows_a_refusal_and_stores_nothing(admin_client, acme, settings):
    settings.BILLING_VAT_CHECKER = ""

    done = admin_client.post(check_url(acme), follow=True)

    assert [str(m) for m in done.context["messages"]] == [
        "no VAT number checker is configured (BILLING_VAT_CHECKER)"
    ]
    assert not VatCheck.objects.exists()


def test_operations_sees_no_button_and_is_refused(client, vies, acme):
    client.force_login(staff("Operations"))
    page = client.get(f"/admin/customers/customer/{acme.pk}/change/")
    assert page.status_code == 200
    assert "Not checked yet." in page.content.decode()
    assert 'id="vat-check"' not in page.content.decode()

    assert client.post(check_url(acme)).status_code == 403
    assert client.get(check_url(acme)).status_code == 405
    assert vies.received == []
    assert not VatCheck.objects.exists()


def test_finance_checks_a_billing_entity_from_its_page(client, vies, acme):
    entity = BillingEntity.objects.get(is_default=True)
    client.force_login(staff("Finance"))
    assert 'id="vat-check"' in client.get(
        f"/admin/customers/billingentity/{entity.pk}/change/"
    ).content.decode("utf-8")

    done = client.post(f"/admin/customers/billingentity/{entity.pk}/vat-check/", follow=True)

    assert [str(m) for m in done.context["messages"]] == [
        "DE811907980 is valid according to VIES (consultation id WAPIAAAAZ3xk1abc)."
    ]
    assert VatCheck.objects.get().billing_entity == entity
    assert "Consultation id: WAPIAAAAZ3xk1abc" in done.content.decode()


def test_a_french_user_reads_the_check_and_its_outcome_in_french(client, vies, acme):
    user = User.objects.create_superuser("marie", password="x")
    user_language_set(user=user, language="fr")
    client.force_login(user)
    page = client.get(f"/admin/customers/customer/{acme.pk}/change/").content.decode()
    assert "Pas encore vérifié." in page
    assert "Vérifier le numéro de TVA auprès de VIES" in page

    done = client.post(check_url(acme), follow=True)

    assert [str(m) for m in done.context["messages"]] == [
        "FR40303265045 est valide selon VIES (identifiant de consultation WAPIAAAAZ3xk1abc)."
    ]
    assert "Identifiant de consultation : WAPIAAAAZ3xk1abc" in done.content.decode()
