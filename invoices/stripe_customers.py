"""The Stripe customer of each customer: created on first use with the customer's
details, and updated (a task, after commit) when the details change."""

from common.task_sending import enqueue_on_commit
from customers.models import Customer

# invoices.services imports this module too (an invoice finalized is collected
# here, an invoice paid here is recorded there); each uses the other's functions
# only when called, so either may be imported first.
from invoices import stripe_client
from invoices.stripe_client import enabled

STRIPE_ADDRESS_FIELDS = ("line1", "line2", "city", "state", "postal_code", "country")


def _latest_version(customer: Customer) -> int:
    """The id of the customer's latest audit record: it changes exactly when the
    customer's details do, so it makes the key of an update."""
    latest = customer.history.order_by("-history_id").values_list("history_id", flat=True)
    return latest.first() or 0


def _customer_params(customer: Customer, *, creating: bool) -> dict:
    params: dict = {
        "name": customer.name,
        "metadata": {"billing_customer_id": str(customer.pk), "external_id": customer.external_id},
    }
    address = {
        name: str(value)
        for name, value in (customer.address or {}).items()
        if name in STRIPE_ADDRESS_FIELDS and value not in (None, "")
    }
    # On an update an empty string clears a field at Stripe; a creation leaves it out.
    if customer.email or not creating:
        params["email"] = customer.email or ""
    if address or not creating:
        params["address"] = address or ""
    return params


def _stored_stripe_id(customer: Customer) -> str:
    return Customer.objects.filter(pk=customer.pk).values_list("stripe_customer_id", flat=True)[0]


def stripe_customer_ensure(*, customer: Customer) -> str:
    """The customer's Stripe id. The Stripe customer is created on first use, once:
    the idempotency key is customer-<id>-create, so two workers creating it at
    once get the same Stripe customer, and its id is stored on the customer.
    Makes a network call: never call it inside a transaction."""
    stored = _stored_stripe_id(customer)
    if stored:
        return stored
    created = stripe_client.customer_create(
        params=_customer_params(customer, creating=True),
        idempotency_key=f"customer-{customer.pk}-create",
    )
    # Not a change of the customer's details: no audit record, and no update sent back.
    Customer.objects.filter(pk=customer.pk, stripe_customer_id="").update(
        stripe_customer_id=created["id"]
    )
    return _stored_stripe_id(customer)


def stripe_customer_sync(*, customer: Customer) -> str:
    """Send the customer's current details to its Stripe customer (created when it
    has none, with them). The update's idempotency key names the customer's audit
    version (customer-<id>-update-<history id>), so sending one version twice is
    one update. Makes a network call."""
    stored = _stored_stripe_id(customer)
    if not stored:
        return stripe_customer_ensure(customer=customer)
    customer = Customer.objects.get(pk=customer.pk)
    stripe_client.customer_update(
        customer_id=stored,
        params=_customer_params(customer, creating=False),
        idempotency_key=f"customer-{customer.pk}-update-{_latest_version(customer)}",
    )
    return stored


def customer_sync_schedule(*, customer: Customer) -> None:
    """After the caller's transaction commits, update the customer's Stripe
    customer (a task). Nothing without Stripe, or for a customer Stripe does not
    know yet: it is created with its details on first use."""
    if not enabled() or not customer.stripe_customer_id:
        return
    enqueue_on_commit("invoices.tasks.sync_stripe_customer", customer.pk)


def default_payment_method(stripe_customer_id: str) -> str:
    """The Stripe customer's default payment method (or source) id, or ''."""
    found = stripe_client.customer_retrieve(customer_id=stripe_customer_id)
    method = (found.get("invoice_settings") or {}).get("default_payment_method")
    if isinstance(method, dict):
        method = method.get("id")
    source = found.get("default_source")
    if isinstance(source, dict):
        source = source.get("id")
    return method or source or ""


def payment_method_remember(*, payment) -> str:
    """After a Checkout payment, make the card it saved the Stripe customer's
    default payment method (for auto top-up and invoices), unless the customer
    has one already. Returns the default method. Makes network calls."""
    if not payment.stripe_payment_intent_id or not payment.stripe_customer_id:
        return ""
    current = default_payment_method(payment.stripe_customer_id)
    if current:
        return current
    intent = stripe_client.payment_intent_retrieve(intent_id=payment.stripe_payment_intent_id)
    method = intent.get("payment_method")
    if isinstance(method, dict):
        method = method.get("id")
    if not method:
        return ""
    stripe_client.customer_update(
        customer_id=payment.stripe_customer_id,
        params={"invoice_settings": {"default_payment_method": method}},
        idempotency_key=f"payment-{payment.pk}-default-method",
    )
    return method
