"""Reads of subscriptions that other apps' pages show: how many customers are
on each plan version."""

from collections.abc import Iterable

from django.db.models import Count, Q, QuerySet

from billing.models import Subscription

LIVE_ON_VERSION = Q(subscriptions__status__in=Subscription.LIVE)


def live_subscription_counts(*, version_ids: Iterable[int]) -> dict[int, int]:
    """Live (trialing or active) subscriptions per version id, in one query;
    a version nobody is on is absent."""
    rows = (
        Subscription.objects.filter(version_id__in=list(version_ids), status__in=Subscription.LIVE)
        .values("version_id")
        .annotate(total=Count("id"))
        .values_list("version_id", "total")
    )
    return dict(rows)


def with_live_subscription_count(versions: QuerySet) -> QuerySet:
    """Plan versions annotated with `live_subscription_count`, counted in the same query."""
    return versions.annotate(
        live_subscription_count=Count("subscriptions", filter=LIVE_ON_VERSION, distinct=True)
    )
