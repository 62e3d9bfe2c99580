"""Values read from the environment for the settings (config.settings): each
reader says what it expected when a value is not one."""

import os
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ImproperlyConfigured


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}") from exc


def env_int_at_least(name: str, default: int, least: int) -> int:
    """env_int, `least` or more."""
    value = env_int(name, default)
    if value < least:
        raise ImproperlyConfigured(f"{name} must be {least} or more, got {value}")
    return value


def env_count_or_off(name: str, default: int) -> int | None:
    """A whole number of 0 or more, or `off` as None."""
    value = (os.environ.get(name) or "").strip().lower()
    if not value:
        return default
    if value == "off":
        return None
    if not value.isdigit():
        raise ImproperlyConfigured(
            f"{name} must be a whole number of 0 or more, or off, got {value!r}"
        )
    return int(value)


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_rate(name: str, default: str) -> tuple[int, int] | None:
    """A rate such as `6000/min` (per `s`, `min`, `hour` or `day`) as (requests,
    seconds); `off` as None, no limit."""
    value = (os.environ.get(name) or default).strip().lower()
    if value == "off":
        return None
    count, _, unit = value.partition("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(unit.strip()[:1])
    if not count.strip().isdigit() or int(count) <= 0 or seconds is None:
        raise ImproperlyConfigured(f"{name} must be like 6000/min or off, got {value!r}")
    return int(count), seconds


def env_decimal(name: str) -> Decimal | None:
    """A number such as `20` or `-5.5`; None when unset or empty."""
    value = (os.environ.get(name) or "").strip()
    if not value:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ImproperlyConfigured(f"{name} must be a number such as 20, got {value!r}")
    return number


def env_decimal_list(name: str, default: list[Decimal]) -> list[Decimal]:
    try:
        return [Decimal(item) for item in env_list(name, [str(d) for d in default])]
    except InvalidOperation as exc:
        raise ImproperlyConfigured(f"{name} must be a comma list of numbers") from exc


def env_minutes_list(name: str, default: list[str]) -> list[int]:
    """Waits such as `1,5,30,120`, in whole minutes."""
    try:
        return [int(minutes) for minutes in env_list(name, default)]
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a comma list of whole minutes") from exc


def env_time_limits(prefix: str, soft: int, hard: int) -> tuple[int, int]:
    """A task's time limits in whole seconds, (soft, hard), from <prefix>_SOFT_TIME_LIMIT
    and <prefix>_TIME_LIMIT: the soft one raises in the task, so that it rolls back and
    fails; the hard one, later, kills its process."""
    soft = env_int(f"{prefix}_SOFT_TIME_LIMIT", soft)
    hard = env_int(f"{prefix}_TIME_LIMIT", hard)
    if not 0 < soft < hard:
        raise ImproperlyConfigured(
            f"{prefix}_SOFT_TIME_LIMIT ({soft}) must be above 0 and below "
            f"{prefix}_TIME_LIMIT ({hard})"
        )
    return soft, hard


DEFAULT_TASK_LIMITS = (120, 150)


def env_task_limits(**defaults: tuple[int, int]) -> dict[str, tuple[int, int]]:
    """Tasks' time limits by kind: "default", every task's (CELERY_TASK_SOFT_TIME_LIMIT
    and CELERY_TASK_TIME_LIMIT, 120 and 150 s unless set), and longer ones by kind
    (pdf=(soft, hard), ...: BILLING_PDF_TASK_SOFT_TIME_LIMIT, ...)."""
    limits = {"default": env_time_limits("CELERY_TASK", *DEFAULT_TASK_LIMITS)}
    for kind, (soft, hard) in defaults.items():
        limits[kind] = env_time_limits(f"BILLING_{kind.upper()}_TASK", soft, hard)
    return limits
