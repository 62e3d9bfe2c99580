"""The words of a bulk migration's preview and confirmation page: who moves
from which version to which, when, what is invoiced and when it is finalized,
the deals dropped and the features gained or lost, in sentences for ops and
finance (amounts and counts through money_text and quantity_text)."""

from datetime import datetime

from django.conf import settings

from billing.core.admin_fields import moment_text
from billing.core.admin_forms import money_text, quantity_text
from billing.models import PlanMigration
from billing.subscriptions import bulk_migration
from plans.feature_models import Feature


def count_text(n: int, one: str, many: str) -> str:
    return f"{quantity_text(n)} {one if n == 1 else many}"


def _names(words: list[str]) -> str:
    """'SSO', 'SSO and Models', 'SSO, Models and Audit log'."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _who(rows: list[bulk_migration.MigrationRow]) -> tuple[str, bool]:
    """'3 customers' (or '5 subscriptions of 3 customers'), and whether it is one."""
    customers = len({row.subscription.customer_id for row in rows})
    if customers == len(rows):
        return count_text(customers, "customer", "customers"), customers == 1
    return (
        f"{count_text(len(rows), 'subscription', 'subscriptions')} of "
        f"{count_text(customers, 'customer', 'customers')}",
        False,
    )


def _from_versions(rows: list[bulk_migration.MigrationRow]) -> str:
    """'Pro v1', or 'Pro v1 (2) and Starter v3 (1)' when they come from several."""
    counts: dict[str, int] = {}
    for row in rows:
        label = str(row.subscription.version)
        counts[label] = counts.get(label, 0) + 1
    if len(counts) == 1:
        return next(iter(counts))
    return _names([f"{label} ({quantity_text(n)})" for label, n in counts.items()])


def finalization_text(preview: bulk_migration.MigrationPreview, *, now: datetime) -> str:
    """When the invoices of an immediate migration are finalized (numbered and sent),
    as billing.invoicing.close does it: at once with no grace, else after it."""
    hours = settings.BILLING_INVOICE_GRACE_HOURS
    if hours > 0:
        return f"kept as a draft for {count_text(hours, 'hour', 'hours')}, then finalized"
    if preview.at is not None and preview.at > now:
        return f"finalized at {moment_text(preview.at)}"
    return "finalized at once"


def migration_consequences(preview: bulk_migration.MigrationPreview, *, now: datetime) -> list[str]:
    """What confirming the preview does, in full sentences for ops and finance."""
    moving, to = preview.moving, str(preview.version)
    currency = preview.version.currency
    who, one = _who(moving)
    move = "moves" if one else "move"
    if preview.effective == PlanMigration.IMMEDIATE:
        invoices = count_text(len(moving), "invoice", "invoices")
        sentences = [
            f"{who} {move} from {_from_versions(moving)} to {to} now, prorated from "
            f"{moment_text(preview.at)}: each gets an invoice for its usage so far and "
            f"the rest of this period, {finalization_text(preview, now=now)} "
            f"({invoices}, {money_text(preview.sum('total'), currency)} in all)."
        ]
    else:
        sentences = [
            f"{who} {move} from {_from_versions(moving)} to {to} at the end of "
            f"{'its' if one else 'their'} current period (no invoice now); the next period's "
            f"fixed fees on {to} come to {money_text(preview.sum('next_fees'), currency)} in all."
        ]
    deals = len({row.subscription.customer_id for row in moving if row.drops_deal})
    if deals == 1:
        sentences.append(f"1 customer's deal is dropped: from the move it pays {to}'s prices.")
    elif deals:
        sentences.append(
            f"{quantity_text(deals)} customers' deals are dropped: from the move they pay "
            f"{to}'s prices."
        )
    sentences += _features_sentences(preview)
    if preview.skipped:
        n = len(preview.skipped)
        stay = (
            "selected subscription stays as it is"
            if n == 1
            else ("selected subscriptions stay as they are")
        )
        sentences.append(f"{quantity_text(n)} {stay}: the preview says why.")
    sentences.append("To move them back, run another migration.")
    return sentences


def _features_sentences(preview: bulk_migration.MigrationPreview) -> list[str]:
    """'Features gained: SSO (2 customers).' and the like, from the preview's rows."""
    by_how: dict[str, dict[str, set[int]]] = {"gained": {}, "lost": {}, "changed": {}}
    for row in preview.moving:
        for how, codes in preview.features_change(row).items():
            for code in codes:
                by_how[how].setdefault(code, set()).add(row.subscription.customer_id)
    names = feature_names({code for codes in by_how.values() for code in codes})
    return [
        f"{title}: "
        + _names(
            [
                f"{names[code]} ({count_text(len(customers), 'customer', 'customers')})"
                for code, customers in sorted(by_how[how].items())
            ]
        )
        + "."
        for how, title in (
            ("gained", "Features gained"),
            ("lost", "Features lost"),
            ("changed", "Features whose value changes"),
        )
        if by_how[how]
    ]


def feature_names(codes: set[str]) -> dict[str, str]:
    """Feature code -> its name ('sso' -> 'SSO'); a code without a feature, as is."""
    named = dict(Feature.objects.filter(code__in=codes).values_list("code", "name"))
    return {code: named.get(code, code) for code in codes}


def features_change_text(change: dict[str, list[str]], names: dict[str, str]) -> str:
    """'gains Models, SSO; loses Audit log; changes Max projects', or ''."""
    parts = [
        f"{verb} {', '.join(names[code] for code in change[how])}"
        for how, verb in (("gained", "gains"), ("lost", "loses"), ("changed", "changes"))
        if change[how]
    ]
    return "; ".join(parts)
