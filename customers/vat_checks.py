"""VAT numbers checked with a VAT number service (the EU's VIES), each answer
kept as a VatCheck with the service's consultation id, the proof a tax auditor
asks for that the number was valid when it was relied upon.

The checker is pluggable (BILLING_VAT_CHECKER): "vies" asks VIES over its REST
API, "fake" answers deterministically (tests, demos), "" none (checks refused).
A check runs in the request that asks for it: one call, a 10 s timeout, no retry;
an unanswered check is recorded too (valid None, with the reason)."""

import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import ClassVar, Protocol

from django.conf import settings

from common.e_invoice_codes import EU_VAT_PREFIXES, vat_id_compact, vat_id_errors
from common.errors import Conflict, InvalidRequest
from customers.billing_entities import customer_billing_entity
from customers.models import BillingEntity, Customer, VatCheck

# VIES's word for a value it does not give (a name or address a member state withholds).
VIES_NOT_GIVEN = "---"


@dataclass(frozen=True)
class VatAnswer:
    """A checker's answer: valid True/False, or None when it could not answer
    (`error` says why). `consultation_id`: the service's id of the consultation."""

    valid: bool | None
    name: str = ""
    address: str = ""
    consultation_id: str = ""
    error: str = ""


class VatChecker(Protocol):
    """Checks an EU VAT number on behalf of a requester (our seller's VAT number,
    which makes the service issue a consultation id). Never raises for the
    service's failures: they are an answer with valid None."""

    name: str

    def check(self, vat_id: str, *, requester: str) -> VatAnswer: ...


def _split(vat_id: str) -> tuple[str, str]:
    """('DE', '136695976') of 'DE 136 695 976'."""
    compact = vat_id_compact(vat_id).upper()
    return compact[:2], compact[2:]


class ViesChecker:
    """The EU's VIES REST API: POST {BILLING_VIES_URL}/check-vat-number."""

    name = VatCheck.VIES
    TIMEOUT_SECONDS: ClassVar[float] = 10

    def __init__(self, base_url: str):
        # urllib opens file: and other schemes too: only http(s) is VIES.
        if not base_url.startswith(("https://", "http://")):
            raise ValueError(f"BILLING_VIES_URL must be an http(s) URL, got {base_url!r}")
        self.url = f"{base_url.rstrip('/')}/check-vat-number"

    def check(self, vat_id: str, *, requester: str) -> VatAnswer:
        country, number = _split(vat_id)
        body = {"countryCode": country, "vatNumber": number}
        if requester and requester[:2].upper() in EU_VAT_PREFIXES:
            requester_country, requester_number = _split(requester)
            body["requesterMemberStateCode"] = requester_country
            body["requesterNumber"] = requester_number
        request = urllib.request.Request(  # noqa: S310 (http(s) only: __init__)
            self.url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.TIMEOUT_SECONDS) as response:  # noqa: S310
                return self._answer(json.loads(response.read()))
        except urllib.error.HTTPError as refused:
            # VIES answers its errors (MS_UNAVAILABLE, INVALID_INPUT...) with a 4xx/5xx too.
            try:
                return self._answer(json.loads(refused.read()))
            except ValueError:
                return VatAnswer(valid=None, error=f"VIES answered HTTP {refused.code}")
        except TimeoutError:
            return VatAnswer(valid=None, error="TIMEOUT: VIES did not answer in time")
        except urllib.error.URLError as failed:
            if isinstance(failed.reason, TimeoutError | socket.timeout):
                return VatAnswer(valid=None, error="TIMEOUT: VIES did not answer in time")
            return VatAnswer(valid=None, error=f"VIES unreachable: {failed.reason}")
        except (OSError, ValueError) as failed:
            return VatAnswer(valid=None, error=f"VIES unreachable or unreadable: {failed}")

    @staticmethod
    def _answer(data) -> VatAnswer:
        """The answer of a VIES JSON body: a userError other than VALID/INVALID, or
        an errorWrappers list, is no answer (valid None, the error's code and message)."""
        if not isinstance(data, dict):
            return VatAnswer(valid=None, error="VIES answered no JSON object")
        user_error = data.get("userError")
        if user_error and user_error not in ("VALID", "INVALID"):
            return VatAnswer(valid=None, error=str(user_error))
        wrappers = data.get("errorWrappers")
        if wrappers:
            first = wrappers[0] if isinstance(wrappers[0], dict) else {}
            code, message = first.get("error", "ERROR"), first.get("message") or ""
            return VatAnswer(valid=None, error=f"{code}: {message}" if message else str(code))
        if not isinstance(data.get("valid"), bool):
            return VatAnswer(valid=None, error="VIES answered without 'valid'")

        def given(key: str) -> str:
            value = data.get(key) or ""
            return "" if value.strip() == VIES_NOT_GIVEN else value.strip()

        return VatAnswer(
            valid=data["valid"],
            name=given("name"),
            address=given("address"),
            consultation_id=str(data.get("requestIdentifier") or ""),
        )


class FakeVatChecker:
    """A deterministic stand-in: every number valid but those in INVALID_NUMBERS
    (compact, with their country prefix); consultation ids FAKE-1, FAKE-2... in
    the order of the checks of this process."""

    name = VatCheck.FAKE
    INVALID_NUMBERS: ClassVar[set[str]] = set()
    consulted: ClassVar[int] = 0

    def check(self, vat_id: str, *, requester: str) -> VatAnswer:
        FakeVatChecker.consulted += 1
        compact = vat_id_compact(vat_id).upper()
        valid = compact not in self.INVALID_NUMBERS
        return VatAnswer(
            valid=valid,
            name=f"Holder of {compact}" if valid else "",
            consultation_id=f"FAKE-{FakeVatChecker.consulted}",
        )


def vat_checker() -> VatChecker | None:
    """The checker BILLING_VAT_CHECKER names; None when none is configured."""
    if settings.BILLING_VAT_CHECKER == VatCheck.VIES:
        return ViesChecker(settings.BILLING_VIES_URL)
    if settings.BILLING_VAT_CHECKER == VatCheck.FAKE:
        return FakeVatChecker()
    return None


def vat_id_check(
    *, customer: Customer | None = None, billing_entity: BillingEntity | None = None, now
) -> VatCheck:
    """Checks the VAT number (tax_id) of a customer or of a billing entity and
    records the answer, whatever it is (valid, invalid, unanswered). The requester
    is the customer's billing entity's VAT number (for an entity, its own).

    Refused before any request to the service: no number, one failing
    vat_id_errors, one outside the EU (InvalidRequest naming `vat_id`); Conflict
    when no checker is configured. Appends one row, updates none."""
    if (customer is None) == (billing_entity is None):
        raise ValueError("check the VAT number of a customer or of a billing entity")
    holder = customer if customer is not None else billing_entity
    vat_id = holder.tax_id or ""
    if vat_id == "":
        problems = ["no VAT number to check"]
    elif errors := vat_id_errors(vat_id):
        problems = errors
    elif vat_id[:2].upper() not in EU_VAT_PREFIXES:
        problems = [f"{vat_id!r} is not an EU VAT number: VIES checks EU VAT numbers only"]
    else:
        problems = []
    if problems:
        raise InvalidRequest(f"vat_id: {problems[0]}", fields={"vat_id": problems})
    checker = vat_checker()
    if checker is None:
        raise Conflict("no VAT number checker is configured (BILLING_VAT_CHECKER)")
    seller = customer_billing_entity(customer) if customer is not None else billing_entity
    requester = seller.tax_id or ""
    answer = checker.check(vat_id, requester=requester)
    return VatCheck.objects.create(
        customer=customer,
        billing_entity=billing_entity,
        vat_id=vat_id,
        valid=answer.valid,
        name=answer.name,
        address=answer.address,
        consultation_id=answer.consultation_id[:64],
        requester_vat_id=requester,
        checker=checker.name,
        checked_at=now,
        error=answer.error,
    )
