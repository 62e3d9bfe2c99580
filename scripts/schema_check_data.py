"""Test data for scripts/schema_check.sh, and the schemathesis configuration that
points the generated requests at it.

Random path parameters find no customer, plan or invoice, and a run of 404s tests
nothing behind them. This gives the demo customers subscriptions started 70 days
ago, closes their periods (so that there are invoices to read, void and download),
adds a draft version to each plan and a pending plan migration, then writes a
schemathesis.toml whose dictionaries hold the codes and ids that
exist: generated requests use one of them most of the time and fuzz the rest.

Run by schema_check.sh after `load_demo`, on the throwaway database it tests:
    python scripts/schema_check_data.py OUTPUT.toml
"""

import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# How often a generated value is replaced by a known one.
KNOWN_VALUE_PROBABILITY = 0.75
SUBSCRIBED_CUSTOMERS = 3


def seed() -> None:
    from django.core.management import call_command

    from billing.models import PlanMigration, Subscription
    from billing.subscriptions import bulk_migration, lifecycle
    from customers.models import Customer
    from plans.models import Plan, PlanVersion
    from plans.services import plan_version_create
    from plans.validation import VersionSpec

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=70)
    published = PlanVersion.objects.filter(status=PlanVersion.PUBLISHED).select_related("plan")
    subscribed = 0
    for customer in Customer.objects.order_by("id"):
        if subscribed == SUBSCRIBED_CUSTOMERS:
            break
        if Subscription.objects.filter(customer=customer, status__in=Subscription.LIVE).exists():
            subscribed += 1
            continue
        version = published.filter(currency=customer.currency).order_by("plan__code").first()
        if version is None:
            continue
        lifecycle.subscription_create(customer=customer, plan=version.plan, start=start)
        subscribed += 1
    call_command("close_periods")
    # A draft version of each plan, for the operations that change drafts.
    for plan in Plan.objects.all():
        if not plan.versions.filter(status=PlanVersion.DRAFT).exists():
            currency = plan.versions.order_by("-number").first().currency
            plan_version_create(plan=plan, version=VersionSpec(currency=currency))
    # A migration to read: one subscription to another plan, at its period's end (no
    # worker runs during the check, so it stays pending).
    if not PlanMigration.objects.exists():
        for subscription in Subscription.objects.filter(status__in=Subscription.LIVE):
            target = (
                published.filter(currency=subscription.version.currency)
                .exclude(plan=subscription.version.plan)
                .first()
            )
            if target is not None:
                preview = bulk_migration.plan_migration_preview(
                    subscriptions=[subscription],
                    version=target,
                    effective=PlanMigration.PERIOD_END,
                    at=None,
                )
                bulk_migration.plan_migration_create(token=uuid.uuid4(), preview=preview)
                break


def toml_value(value) -> str:
    # JSON strings, numbers and lists of them are TOML too.
    return json.dumps(value)


def config() -> str:
    from billing.models import PlanMigration, Subscription
    from customers.models import Customer
    from invoices.models import Invoice
    from plans.models import CreditPack, Meter, Plan, PlanVersion

    dictionaries = {
        "customers": list(Customer.objects.values_list("external_id", flat=True)),
        "currencies": sorted(set(Customer.objects.values_list("currency", flat=True))),
        "plans": list(Plan.objects.values_list("code", flat=True)),
        "versions": sorted(set(PlanVersion.objects.values_list("number", flat=True))),
        "meters": list(Meter.objects.values_list("code", flat=True)),
        "event_names": sorted(set(Meter.objects.values_list("event_name", flat=True))),
        "packs": list(CreditPack.objects.values_list("code", flat=True)),
        "subscriptions": list(Subscription.objects.values_list("id", flat=True)),
        "invoices": list(Invoice.objects.values_list("id", flat=True)),
        "migrations": list(PlanMigration.objects.values_list("id", flat=True)),
        "wallet_kinds": ["credits", "money"],
    }
    everywhere = {
        "path.external_id": "customers",
        "path.number": "versions",
        "path.kind": "wallet_kinds",
        "path.subscription_id": "subscriptions",
        "path.invoice_id": "invoices",
        "path.migration_id": "migrations",
        "query.customer": "customers",
        "body.customer": "customers",
        "body.currency": "currencies",
        "body.plan": "plans",
        "body.from_plan": "plans",
        "body.meter": "meters",
        "body.pack": "packs",
        "body.subscriptions[*]": "subscriptions",
        "body.charges[*].meter": "meters",
        "body.events[*].customer": "customers",
        "body.events[*].event_name": "event_names",
    }
    # `code` names a meter, a plan or a credit pack, depending on the path.
    codes = {
        "^/api/v1/meters/": "meters",
        "^/api/v1/plans/": "plans",
        "^/api/v1/credit-packs/": "packs",
    }
    lines = ["# Written by scripts/schema_check_data.py for one run; not kept.", ""]
    # Nothing kept between runs either (no .schemathesis/ in the working tree).
    lines += ["[cache]", "enabled = false", ""]
    # A dictionary holds at least one value: an empty one only generates.
    dictionaries = {name: values for name, values in dictionaries.items() if values}
    everywhere = {key: name for key, name in everywhere.items() if name in dictionaries}
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {toml_value(values)}", ""]

    def binding(dictionary: str) -> str:
        return f'{{ dictionary = "{dictionary}", probability = {KNOWN_VALUE_PROBABILITY} }}'

    lines.append("[parameters]")
    lines += [f"{toml_value(key)} = {binding(name)}" for key, name in everywhere.items()]
    for regex, name in codes.items():
        lines += [
            "",
            "[[operations]]",
            f"include-path-regex = {toml_value(regex)}",
            f"parameters = {{ {toml_value('path.code')} = {binding(name)} }}",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    seed()
    Path(sys.argv[1]).write_text(config())


if __name__ == "__main__":
    main()
