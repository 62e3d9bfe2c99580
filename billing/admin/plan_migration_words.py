"""The words of a bulk migration's preview and confirmation page: who moves
from which version to which, when, what is invoiced and when it is finalized,
the deals dropped and the features gained or lost, in sentences for ops and
finance (amounts and counts through money_text and quantity_text)."""

from datetime import datetime

from django.conf import settings
from django.utils.translation import gettext, ngettext

from billing.models import PlanMigration
from billing.subscriptions import bulk_migration
from common.admin_fields import moment_text
from common.admin_forms import money_text, quantity_text
from plans.feature_models import Feature


def count_text(n: int, one: str, many: str) -> str:
    return f"{quantity_text(n)} {one if n == 1 else many}"


def customers_text(n: int) -> str:
    return ngettext("{count} customer", "{count} customers", n).format(count=quantity_text(n))


def _names(words: list[str]) -> str:
    """'SSO', 'SSO and Models', 'SSO, Models and Audit log'."""
    if len(words) == 1:
        return words[0]
    return gettext("{names} and {last}").format(names=", ".join(words[:-1]), last=words[-1])


def _who(rows: list[bulk_migration.MigrationRow]) -> tuple[str, bool]:
    """'3 customers' (or '5 subscriptions of 3 customers'), and whether it is one."""
    customers = len({row.subscription.customer_id for row in rows})
    if customers == len(rows):
        return customers_text(customers), customers == 1
    subscriptions = ngettext("{count} subscription", "{count} subscriptions", len(rows))
    return (
        gettext("{subscriptions} of {customers}").format(
            subscriptions=subscriptions.format(count=quantity_text(len(rows))),
            customers=customers_text(customers),
        ),
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
        return ngettext(
            "kept as a draft for {count} hour, then finalized",
            "kept as a draft for {count} hours, then finalized",
            hours,
        ).format(count=quantity_text(hours))
    if preview.at is not None and preview.at > now:
        return gettext("finalized at {moment}").format(moment=moment_text(preview.at))
    return gettext("finalized at once")


def migration_consequences(preview: bulk_migration.MigrationPreview, *, now: datetime) -> list[str]:
    """What confirming the preview does, in full sentences for ops and finance."""
    moving, to = preview.moving, str(preview.version)
    currency = preview.version.currency
    who, one = _who(moving)
    words = {"who": who, "source": _from_versions(moving), "target": to}
    if preview.effective == PlanMigration.IMMEDIATE:
        invoices = ngettext("{count} invoice", "{count} invoices", len(moving))
        if one:
            sentence = gettext(
                "{who} moves from {source} to {target} now, prorated from {start}: each gets "
                "an invoice for its usage so far and the rest of this period, {finalized} "
                "({invoices}, {total} in all before tax, net of the credit notes for the "
                "unused time)."
            )
        else:
            sentence = gettext(
                "{who} move from {source} to {target} now, prorated from {start}: each gets "
                "an invoice for its usage so far and the rest of this period, {finalized} "
                "({invoices}, {total} in all before tax, net of the credit notes for the "
                "unused time)."
            )
        words |= {
            "start": moment_text(preview.at),
            "finalized": finalization_text(preview, now=now),
            "invoices": invoices.format(count=quantity_text(len(moving))),
            "total": money_text(preview.sum("total"), currency),
        }
    else:
        if one:
            sentence = gettext(
                "{who} moves from {source} to {target} at the end of its current period "
                "(no invoice now); the next period's fixed fees on {target} come to {total} "
                "in all."
            )
        else:
            sentence = gettext(
                "{who} move from {source} to {target} at the end of their current period "
                "(no invoice now); the next period's fixed fees on {target} come to {total} "
                "in all."
            )
        words["total"] = money_text(preview.sum("next_fees"), currency)
    sentences = [sentence.format(**words)]
    deals = len({row.subscription.customer_id for row in moving if row.drops_deal})
    if deals:
        sentences.append(
            ngettext(
                "{count} customer's deal is dropped: from the move it pays {target}'s prices.",
                "{count} customers' deals are dropped: from the move they pay {target}'s prices.",
                deals,
            ).format(count=quantity_text(deals), target=to)
        )
    sentences += _features_sentences(preview)
    if preview.skipped:
        n = len(preview.skipped)
        sentences.append(
            ngettext(
                "{count} selected subscription stays as it is: the preview says why.",
                "{count} selected subscriptions stay as they are: the preview says why.",
                n,
            ).format(count=quantity_text(n))
        )
    sentences.append(gettext("To move them back, run another migration."))
    return sentences


def _features_sentences(preview: bulk_migration.MigrationPreview) -> list[str]:
    """'Features gained: SSO (2 customers).' and the like, from the preview's rows."""
    by_how: dict[str, dict[str, set[int]]] = {"gained": {}, "lost": {}, "changed": {}}
    for row in preview.moving:
        for how, codes in preview.features_change(row).items():
            for code in codes:
                by_how[how].setdefault(code, set()).add(row.subscription.customer_id)
    names = feature_names({code for codes in by_how.values() for code in codes})
    titles = {
        "gained": gettext("Features gained: {features}."),
        "lost": gettext("Features lost: {features}."),
        "changed": gettext("Features whose value changes: {features}."),
    }
    return [
        title.format(
            features=_names(
                [
                    f"{names[code]} ({customers_text(len(customers))})"
                    for code, customers in sorted(by_how[how].items())
                ]
            )
        )
        for how, title in titles.items()
        if by_how[how]
    ]


def feature_names(codes: set[str]) -> dict[str, str]:
    """Feature code -> its name ('sso' -> 'SSO'); a code without a feature, as is."""
    named = dict(Feature.objects.filter(code__in=codes).values_list("code", "name"))
    return {code: named.get(code, code) for code in codes}


def features_change_text(change: dict[str, list[str]], names: dict[str, str]) -> str:
    """'gains Models, SSO; loses Audit log; changes Max projects', or ''."""
    verbs = {
        "gained": gettext("gains {features}"),
        "lost": gettext("loses {features}"),
        "changed": gettext("changes {features}"),
    }
    parts = [
        verb.format(features=", ".join(names[code] for code in change[how]))
        for how, verb in verbs.items()
        if change[how]
    ]
    return "; ".join(parts)
