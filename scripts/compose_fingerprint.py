"""What an upgrade or a broker outage must not lose, printed as one JSON line:
run inside a container of the compose stack (scripts/compose_check.sh) with
`python manage.py shell -c "exec(open('/app/scripts/compose_fingerprint.py').read())"`.
Rows counted per table that holds money or usage, the invoices' numbers and totals."""

import json

from django.apps import apps
from django.db.models import Sum

MODELS = (
    "customers.Customer",
    "billing.Subscription",
    "billing.UsageEvent",
    "billing.JournalEntry",
    "wallets.Wallet",
    "wallets.LedgerEntry",
    "invoices.Invoice",
    "invoices.InvoiceLine",
    "invoices.InvoiceTaxLine",
    "invoices.CreditNote",
    "invoices.InvoiceSequence",
)
counts = {name: apps.get_model(name).objects.count() for name in MODELS}
Invoice = apps.get_model("invoices.Invoice")
numbers = sorted(Invoice.objects.exclude(number="").values_list("number", flat=True))
total = Invoice.objects.aggregate(total=Sum("total"))["total"]
print(json.dumps({"counts": counts, "numbers": numbers, "total": str(total)}, sort_keys=True))
