"""Dunning policies and which one a customer follows (services).

A policy is a code, a name, whether it is the default, and its steps; writing
one replaces its steps (what already ran on invoices stays: runs are keyed by
the action and its days, not by the step row). A customer follows its own
policy, the default one (no policy of its own), or none (dunning off)."""

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from common.errors import Conflict, InvalidRequest, NotFound
from customers.locks import customer_lock
from customers.models import Customer
from invoices.dunning_models import (
    MAX_DAYS_AFTER_DUE,
    MAX_STEPS,
    MIN_DAYS_AFTER_DUE,
    NO_DUNNING,
    DunningPolicy,
    DunningStep,
)


@dataclass(frozen=True)
class StepInput:
    days_after_due: int
    action: str


def steps_check(steps: list[StepInput]) -> None:
    if len(steps) > MAX_STEPS:
        raise InvalidRequest(f"at most {MAX_STEPS} steps", fields={"steps": ["too many"]})
    actions = {code for code, _label in DunningStep.ACTIONS}
    errors, seen = [], set()
    for position, step in enumerate(steps):
        if step.action not in actions:
            errors.append(
                f"step {position + 1}: unknown action {step.action!r} "
                f"(one of {', '.join(sorted(actions))})"
            )
        if not MIN_DAYS_AFTER_DUE <= step.days_after_due <= MAX_DAYS_AFTER_DUE:
            errors.append(
                f"step {position + 1}: days_after_due must be from {MIN_DAYS_AFTER_DUE} "
                f"to {MAX_DAYS_AFTER_DUE}"
            )
        if step.action in (DunningStep.RESTRICT, DunningStep.SUSPEND) and step.days_after_due < 1:
            errors.append(
                f"step {position + 1}: an account is {step.action}ed only after the due date "
                "(days_after_due 1 or more)"
            )
        key = (step.action, step.days_after_due)
        if key in seen:
            errors.append(f"step {position + 1}: {step.action} on day {step.days_after_due} twice")
        seen.add(key)
    restrict = [s.days_after_due for s in steps if s.action == DunningStep.RESTRICT]
    suspend = [s.days_after_due for s in steps if s.action == DunningStep.SUSPEND]
    if restrict and suspend and min(suspend) < min(restrict):
        errors.append("the account is suspended before it is restricted: suspend later")
    if errors:
        raise InvalidRequest(
            "invalid dunning steps: " + "; ".join(errors), fields={"steps": errors}
        )


def _step_order(step: StepInput) -> tuple[int, int]:
    return step.days_after_due, DunningStep.ORDER.index(step.action)


def policy_save(
    *, code: str, name: str, is_default: bool, steps: list[StepInput], policy=None
) -> DunningPolicy:
    """Create a policy (policy None) or replace one's name, default mark and
    steps. Marking it default takes the mark from the one that had it."""
    if code == NO_DUNNING:
        raise InvalidRequest(
            f"{NO_DUNNING!r} means no dunning and cannot be a policy's code",
            fields={"code": ["reserved"]},
        )
    steps_check(steps)
    with transaction.atomic():
        if is_default:
            DunningPolicy.objects.filter(is_default=True).exclude(
                pk=getattr(policy, "pk", None)
            ).update(is_default=False)
        if policy is None:
            try:
                with transaction.atomic():
                    policy = DunningPolicy.objects.create(
                        code=code, name=name, is_default=is_default
                    )
            except IntegrityError as error:
                raise Conflict(f"a dunning policy {code!r} exists already") from error
        else:
            policy.name, policy.is_default = name, is_default
            policy.save(update_fields=["name", "is_default"])
            policy.steps.all().delete()
        DunningStep.objects.bulk_create(
            DunningStep(policy=policy, days_after_due=s.days_after_due, action=s.action)
            for s in sorted(
                steps, key=lambda s: (s.days_after_due, DunningStep.ORDER.index(s.action))
            )
        )
    return policy


def policy_by_code(code: str) -> DunningPolicy:
    found = DunningPolicy.objects.filter(code=code).first()
    if found is None:
        raise NotFound(f"no dunning policy {code!r}")
    return found


def policy_delete(*, policy: DunningPolicy) -> None:
    followers = Customer.objects.filter(dunning_policy=policy).count()
    if followers:
        raise Conflict(
            f"{followers} customer(s) follow the dunning policy {policy.code!r}: "
            "give them another policy first"
        )
    policy.delete()


def customer_policy_choice(code: str | None) -> tuple[DunningPolicy | None, bool]:
    """What a customer's `dunning_policy` code means: (its policy, dunning off).
    None: the default policy; "none": no dunning. An unknown code is refused."""
    if code is None or code == "":
        return None, False
    if code == NO_DUNNING:
        return None, True
    found = DunningPolicy.objects.filter(code=code).first()
    if found is None:
        raise InvalidRequest(
            f"no dunning policy {code!r}", fields={"dunning_policy": ["unknown policy"]}
        )
    return found, False


def customer_policy_set(
    *, customer: Customer, choice: tuple[DunningPolicy | None, bool]
) -> Customer:
    with transaction.atomic():
        locked = customer_lock(customer.pk)
        locked.dunning_policy, locked.dunning_off = choice
        locked.save(update_fields=["dunning_policy", "dunning_off"])
    return locked


def customer_policy_code(customer: Customer) -> str | None:
    """The customer's `dunning_policy` as the API shows it: its policy's code,
    "none" when off, None when it follows the default."""
    if customer.dunning_off:
        return NO_DUNNING
    return customer.dunning_policy.code if customer.dunning_policy_id else None


def dunning_pause(
    *, customer: Customer, until: datetime | None, by: str, now: datetime
) -> Customer:
    """Hold the customer's dunning steps until `until` (None: resume now); who
    asked is kept for the admin."""
    if until is not None and until <= now:
        raise InvalidRequest(
            "until must be in the future (null resumes dunning now)",
            fields={"until": ["in the past"]},
        )
    with transaction.atomic():
        locked = customer_lock(customer.pk)
        locked.dunning_paused_until = until
        locked.dunning_paused_by = by[:255] if until is not None else ""
        locked.save(update_fields=["dunning_paused_until", "dunning_paused_by"])
    return locked
