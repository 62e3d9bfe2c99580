"""Price simulation (services): customers' real usage of a past period rated at
the version each was on and at another (usually draft) version, with the
difference per customer and in sum. It writes simulation rows, never an invoice.

A customer's period is rated as a period statement (billing.usage.statement),
the one the close bills: the base fee and seats of the period, the priced usage
of each charge and the minimum commitment true-up, every line rounded once as on
an invoice. Left out: proration (plan and seat changes within the period), late
usage and a customer's commit (its drawdown pays for usage at any price: the
simulation compares prices; the period's statement says what it bills). A rate
card prices each row's usage, read per combination of group values as the close
reads it. Credit and balance charges are drawn from wallets as usage happens and
are on no invoice, so they add nothing here, except what a charge that bills
when its wallet runs dry bills for the usage the wallet could not pay for.
"""

import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models.functions import Greatest
from django.utils.translation import gettext

from billing.models import Subscription
from billing.simulation.period_subscriptions import period_subscriptions, period_terms
from billing.usage.billed_parts import overrides_billed
from billing.usage.metering import meter_cache
from billing.usage.statement import (
    statement_of,
    uncovered_usage,
    usage_by_meter,
    usage_combinations_by_meter,
)
from common import periods
from common.customer_text import customer_zone
from common.errors import BillingError, InvalidRequest
from common.stored_words import said_in_other_languages
from common.task_sending import enqueue_on_commit
from customers.models import Customer
from plans.locks import price_simulation_lock
from plans.models import PlanVersion, PriceSimulation, PriceSimulationRow
from plans.overrides import deal_specs
from plans.rate_card_pricing import Combination
from plans.selectors import version_spec
from plans.validation import VersionSpec

ZERO = Decimal(0)


logger = logging.getLogger(__name__)


# Up to this many customers a simulation runs in the request; more run as a task.
INLINE_LIMIT = 50


# Customers rated between two progress updates (one transaction each).
CHUNK = 25


NO_SUBSCRIPTION = "no subscription"


@dataclass(frozen=True)
class SimulatedCustomer:
    """One customer's period at its own version and at the simulated one."""

    customer_id: int
    current_version_label: str
    current_total: Decimal
    simulated_total: Decimal
    currency: str

    @property
    def difference(self) -> Decimal:
        return self.simulated_total - self.current_total


def _period_total(
    spec: VersionSpec,
    *,
    seats: int,
    quantities: dict[str, Decimal],
    fixed_fees: bool,
    period_start: datetime,
    period_end: datetime,
    zone: ZoneInfo,
    subscription: Subscription | None,
    customer_id: int,
    combinations: dict[str, dict[Combination, Decimal]],
) -> Decimal:
    # What the customer's wallets could not pay for in the period, billed by the
    # version's charges that bill when exhausted.
    uncovered = uncovered_usage(
        customer_id=customer_id, spec=spec, start=period_start, end=period_end
    )
    statement = statement_of(
        spec,
        start=period_start,
        end=period_end,
        seats=seats,
        quantities=quantities,
        # Against a calendar subscription's month for its first period, as the close.
        fraction=periods.period_fraction(
            period_start,
            period_end,
            zone,
            interval=spec.interval,
            whole=subscription.whole_period(period_start, period_end, interval=spec.interval)
            if subscription
            else None,
        ),
        fixed_fees=fixed_fees,
        uncovered=uncovered,
        combinations=combinations,
    )
    return statement.totals([]).total


def _rate(
    customer: Customer,
    subscription: Subscription | None,
    *,
    version: PlanVersion,
    spec: VersionSpec,
    period_start: datetime,
    period_end: datetime,
) -> SimulatedCustomer:
    zone = customer_zone(customer)
    current, current_spec = None, None
    seats, fixed_fees, label_text = 1, True, NO_SUBSCRIPTION
    if subscription is not None:
        terms = period_terms(subscription, period_start=period_start, period_end=period_end)
        current, current_spec = terms.version, version_spec(version=terms.version)
        seats, fixed_fees = terms.seats, terms.fixed_fees
        label_text = str(current)  # 'AI Assistant v1', as the admin names a version
        if terms.changed:
            label_text += " (changed in the period)"
        deal = overrides_billed(subscription, period_start=period_start, version=current)
        if deal:  # the customer's deal, on what it was billed and on the draft
            current_spec, spec, dropped = deal_specs(current_spec, spec, deal)
            label_text += " with a deal" + (f" (not on {', '.join(dropped)})" if dropped else "")
    codes = [c.meter for c in spec.charges]
    if current_spec is not None:
        codes += [c.meter for c in current_spec.charges]
    # One read of the usage, for both versions' meters; and of the combinations
    # of group values their rate cards price (each at its rows).
    quantities = usage_by_meter(
        customer_id=customer.pk, meter_codes=codes, start=period_start, end=period_end
    )
    both = replace(spec, charges=spec.charges + (current_spec.charges if current_spec else ()))
    combinations = usage_combinations_by_meter(
        customer_id=customer.pk, spec=both, start=period_start, end=period_end
    )
    period = {
        "seats": seats,
        "quantities": quantities,
        "fixed_fees": fixed_fees,
        "period_start": period_start,
        "period_end": period_end,
        "zone": zone,
        "subscription": subscription,
        "customer_id": customer.pk,
        "combinations": combinations,
    }
    current_total = ZERO
    if current is not None:
        current_total = _period_total(current_spec, **period)
    return SimulatedCustomer(
        customer_id=customer.pk,
        current_version_label=label_text,
        current_total=current_total,
        simulated_total=_period_total(spec, **period),
        currency=spec.currency,
    )


def simulation_rate_customer(
    *,
    customer: Customer,
    version: PlanVersion,
    period_start: datetime,
    period_end: datetime,
    spec: VersionSpec | None = None,
) -> SimulatedCustomer:
    """The customer's usage in [period_start, period_end) rated as one period at
    the version it was on then (a period statement, as the close rates)
    and at `version` (`spec`: its terms, when the caller has read them). A
    customer without a subscription in the period has a current total of 0.
    Reads only."""
    subscription = period_subscriptions(
        customer_ids=[customer.pk], period_start=period_start, period_end=period_end
    ).get(customer.pk)
    return _rate(
        customer,
        subscription,
        version=version,
        spec=spec or version_spec(version=version),
        period_start=period_start,
        period_end=period_end,
    )


def _names(customers: list[Customer], most: int = 5, *, name: bool = False) -> str:
    """'acme, beta and 2 more' (the API's ids); by `name`: 'Acme Inc, Beta Ltd …'."""
    shown = ", ".join((name and c.name) or c.external_id for c in customers[:most])
    return shown + (f" and {len(customers) - most} more" if len(customers) > most else "")


def failure_words(error: Exception) -> str:
    """Why a simulation stopped, as its result page says it: a refusal in its
    words (plans and customers by name); anything else by its kind, with where
    the details are and what to do."""
    if isinstance(error, BillingError):
        return error.words
    return gettext(
        "An unexpected error stopped the simulation ({kind}); the details are in the server "
        "log. Run it again, and tell whoever runs the server if it fails again."
    ).format(kind=type(error).__name__)


def simulation_check(
    *,
    version: PlanVersion,
    period_start: datetime | None,
    period_end: datetime | None,
    customers: list[Customer],
    now: datetime,
) -> None:
    """Raise InvalidRequest (with the fields at fault) unless this simulation can
    run: a period that has ended, at least one customer, and customers who pay in
    the version's currency."""
    errors: dict[str, list[str]] = {}
    if period_start is not None and period_end is not None:
        if period_end <= period_start:
            errors["period_end"] = ["must be after the start"]
        elif period_end > now:
            errors["period_end"] = ["must not be in the future: simulate a period that has ended"]
    if not customers:
        errors["customers"] = ["choose at least one customer"]
    others = [c for c in customers if c.currency != version.currency]
    if others:
        errors["version"] = [
            f"{version} bills in {version.currency}; {_names(others)} pay in another currency"
        ]
    if errors:
        first = next(iter(errors.items()))
        words = ""
        if list(errors) == ["version"]:
            # The admin names the customers, and what to do.
            words = (
                f"{version.plan.name} v{version.number} bills in {version.currency} and "
                f"{_names(others, name=True)} {'pays' if len(others) == 1 else 'pay'} in "
                f"{'/'.join(sorted({c.currency for c in others}))}: choose customers who pay "
                f"in {version.currency}, or a version in their currency."
            )
        raise InvalidRequest(
            f"cannot simulate: {first[0]}: {first[1][0]}", fields=errors, words=words
        )


def simulation_request(
    *,
    version: PlanVersion,
    period_start: datetime,
    period_end: datetime,
    customers: list[Customer],
    selection: str,
    user,
    now: datetime,
) -> PriceSimulation:
    """Record a simulation of `customers` and run it: in this request for up to
    INLINE_LIMIT customers, otherwise as a task enqueued when this transaction
    commits (the page then follows its progress). Writes no invoice."""
    simulation_check(
        version=version,
        period_start=period_start,
        period_end=period_end,
        customers=customers,
        now=now,
    )
    customer_ids = sorted({c.pk for c in customers})
    simulation = PriceSimulation.objects.create(
        version=version,
        period_start=period_start,
        period_end=period_end,
        selection=selection[:500],
        customer_ids=customer_ids,
        currency=version.currency,
        total_customers=len(customer_ids),
        created_by=user,
        created_at=now,
    )
    if len(customer_ids) <= INLINE_LIMIT:
        return simulation_run(simulation_id=simulation.pk, now=now)
    enqueue_on_commit("plans.tasks.run_price_simulation", simulation.pk, robust=False)
    return simulation


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def simulation_run(*, simulation_id: int, now: datetime) -> PriceSimulation:
    """Rate the simulation's customers not rated yet, CHUNK at a time (each chunk's
    rows and the progress in one transaction), then add up the sums and mark it
    done. Idempotent: a second run, even at the same time, rates each customer
    once (a unique constraint; progress and sums are counted from the rows) and
    a finished simulation is left as it is. A failure marks it failed, with the
    message; nothing is raised. Writes no invoice."""
    with transaction.atomic():
        simulation = price_simulation_lock(simulation_id)
        if simulation.status in (PriceSimulation.DONE, PriceSimulation.FAILED):
            return simulation
        if simulation.status == PriceSimulation.PENDING:
            simulation.status = PriceSimulation.RUNNING
            simulation.save(update_fields=["status"])
    try:
        _rate_remaining(simulation)
    except Exception as error:
        logger.exception("price simulation %s failed", simulation_id)
        # A refusal's words were said in this task's English; the rest in every language.
        said = functools.partial(failure_words, error)
        words = {} if isinstance(error, BillingError) else said_in_other_languages(said)
        return _finish(
            simulation_id,
            status=PriceSimulation.FAILED,
            error=failure_words(error),
            error_words=words,
            now=now,
        )
    return _finish(simulation_id, status=PriceSimulation.DONE, error="", now=now)


def _rate_remaining(simulation: PriceSimulation) -> None:
    version = simulation.version
    spec = version_spec(version=version)
    rated = set(simulation.rows.values_list("customer_id", flat=True))
    remaining = [i for i in simulation.customer_ids if i not in rated]
    period = {"period_start": simulation.period_start, "period_end": simulation.period_end}
    with meter_cache.pinned():
        for chunk in _chunks(remaining, CHUNK):
            customers = Customer.objects.in_bulk(chunk)
            subscriptions = period_subscriptions(customer_ids=chunk, **period)
            results = [
                _rate(customers[i], subscriptions.get(i), version=version, spec=spec, **period)
                for i in chunk
                if i in customers
            ]
            with transaction.atomic():
                PriceSimulationRow.objects.bulk_create(
                    [
                        PriceSimulationRow(
                            simulation=simulation,
                            customer_id=r.customer_id,
                            current_version_label=r.current_version_label,
                            current_total=r.current_total,
                            simulated_total=r.simulated_total,
                            difference=r.difference,
                            currency=r.currency,
                        )
                        for r in results
                    ],
                    ignore_conflicts=True,
                )
                done = PriceSimulationRow.objects.filter(simulation=simulation).count()
                PriceSimulation.objects.filter(pk=simulation.pk).update(
                    done_count=Greatest("done_count", done)
                )


def _finish(
    simulation_id: int, *, status: str, error: str, now: datetime, error_words: dict | None = None
) -> PriceSimulation:
    """Sums from the rows (added as Decimals, exact), progress, status. Under the row lock."""
    with transaction.atomic():
        simulation = price_simulation_lock(simulation_id)
        if simulation.status in (PriceSimulation.DONE, PriceSimulation.FAILED):
            return simulation
        totals = list(simulation.rows.values_list("current_total", "simulated_total", "difference"))
        simulation.current_sum = sum((t[0] for t in totals), ZERO)
        simulation.simulated_sum = sum((t[1] for t in totals), ZERO)
        simulation.difference_sum = sum((t[2] for t in totals), ZERO)
        simulation.done_count = len(totals)
        simulation.status = status
        simulation.error = error
        simulation.error_words = error_words or {}
        simulation.finished_at = now
        simulation.save()
    return simulation
