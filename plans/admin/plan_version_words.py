"""The words of a plan version's admin pages (plans.admin.plan_versions): what
publishing or archiving will do, to how many customers, said on the
confirmation page before it is done; a refusal from plans.services in words;
and when a price changed, in the admin's time zone."""

from django.core.exceptions import FieldDoesNotExist
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.translation import gettext, ngettext, pgettext
from django.utils.translation import gettext_lazy as _

from common.errors import BillingError
from plans.models import PlanVersion


def customers_on(count: int, version: PlanVersion) -> str:
    """'The 12 customers on Pro v1 stay on it until you migrate them.'"""
    if count == 1:
        return gettext("The one customer on {version} stays on it until you migrate them.").format(
            version=version
        )
    return ngettext(
        "The {count} customer on {version} stays on it until you migrate them.",
        "The {count} customers on {version} stay on it until you migrate them.",
        count,
    ).format(count=count, version=version)


def api_default_sentence(version: PlanVersion) -> str:
    """Which version an API subscription naming no version starts on once `version`
    is published: the plan's highest-numbered published one."""
    plan = version.plan
    later = (
        plan.versions.filter(status=PlanVersion.PUBLISHED, number__gt=version.number)
        .order_by("-number")
        .first()
    )
    if later is not None:
        return gettext(
            "A subscription to {plan} created through the API without a version number "
            "still starts on {later}, the latest published version."
        ).format(plan=plan, later=later)
    return gettext(
        "A subscription to {plan} created through the API without a version number "
        "starts on {version} from now on."
    ).format(plan=plan, version=version)


def publish_consequences(version: PlanVersion, counts: dict[int, int]) -> list[str]:
    plan = version.plan
    if version.status != PlanVersion.DRAFT:
        return [
            gettext("{version} is {status}: it is left as it is.").format(
                version=version, status=str(version.get_status_display()).lower()
            )
        ]
    sentences = [
        gettext("{version}'s prices become read-only.").format(version=version),
        gettext("New subscriptions and migrations can use {version}.").format(version=version),
        api_default_sentence(version),
    ]
    others = [v for v in plan.versions.order_by("number") if counts.get(v.pk)]
    sentences.extend(customers_on(counts[v.pk], v) for v in others)
    if not others:
        sentences.append(
            gettext("No customer is on {plan} yet.").format(plan=plan.name or plan.code)
        )
    return sentences


def archive_consequences(version: PlanVersion, counts: dict[int, int]) -> list[str]:
    if version.status == PlanVersion.ARCHIVED:
        return [
            gettext("{version} is archived already: it is left as it is.").format(version=version)
        ]
    count = counts.get(version.pk, 0)
    sentences = [gettext("No new subscription can start on {version}.").format(version=version)]
    if version.status == PlanVersion.DRAFT:
        sentences.append(gettext("The draft can no longer be changed or published."))
    elif count == 1:
        sentences.append(gettext("The one customer on it keeps it until you migrate them."))
    elif count:
        sentences.append(
            gettext("The {count} customers on it keep it until you migrate them.").format(
                count=count
            )
        )
    else:
        sentences.append(gettext("No customer is on it."))
    plan = version.plan
    others_published = plan.versions.filter(status=PlanVersion.PUBLISHED).exclude(pk=version.pk)
    if version.status == PlanVersion.PUBLISHED and not others_published.exists():
        sentences.append(
            gettext(
                "{plan} then has no published version: no new customer can subscribe to it."
            ).format(plan=plan.name or plan.code)
        )
    return sentences


def field_words(path: str) -> str:
    """Where a refusal's path points, in words: 'Charge 1, tier 2', 'Base fee'."""
    parts = path.split(".")
    if parts[0] == "charges" and len(parts) > 1 and parts[1].isdigit():
        charge = int(parts[1]) + 1
        if len(parts) > 4 and parts[3] == "tiers" and parts[4].isdigit():
            return gettext("Charge {charge}, tier {tier}").format(
                charge=charge, tier=int(parts[4]) + 1
            )
        return gettext("Charge {charge}").format(charge=charge)
    if parts[0] == "features":
        return gettext("Features")
    try:
        return str(PlanVersion._meta.get_field(parts[0]).verbose_name).capitalize()
    except FieldDoesNotExist:  # a path that names no field is shown as it is
        return parts[0]


NOT_DONE = {
    "copied": _("{version} was not copied"),
    "published": _("{version} was not published"),
    "archived": _("{version} was not archived"),
}


def refusal_text(version: PlanVersion, not_done: str, error: BillingError) -> str:
    """'Pro v2 was not published. Charge 1, tier 2: The last tier needs no upper
    limit: leave 'Up to' empty.'"""
    details = [
        f"{field_words(p)}: {text}" for p, texts in error.admin_fields.items() for text in texts
    ]
    said = str(NOT_DONE[not_done]).format(version=version)
    if not details:
        return f"{said}: {error.words}"
    return f"{said}. " + " ".join(f"{d}." for d in details)


def selected_words(action: str, versions: list[PlanVersion]) -> tuple[str, str]:
    """The list action's confirmation title and button, for the versions selected."""
    count = len(versions)
    if count == 1 and action == "publish":
        version = versions[0]
        return (
            gettext("Publish {version}?").format(version=version),
            gettext("Publish {version}").format(version=version),
        )
    if count == 1:
        version = versions[0]
        return (
            gettext("Archive {version}?").format(version=version),
            gettext("Archive {version}").format(version=version),
        )
    if action == "publish":
        return (
            ngettext("Publish {count} version?", "Publish {count} versions?", count).format(
                count=count
            ),
            ngettext("Publish {count} version", "Publish {count} versions", count).format(
                count=count
            ),
        )
    return (
        ngettext("Archive {count} version?", "Archive {count} versions?", count).format(
            count=count
        ),
        ngettext("Archive {count} version", "Archive {count} versions", count).format(count=count),
    )


def when_text(moment) -> str:
    """'22 Nov 2026, 21:15:04 UTC' ('22 nov. 2026, …' in French): in the admin's
    time zone, which it names; the format is the history pages' (audit_history_list)."""
    local = timezone.localtime(moment)
    shown = pgettext("a moment on a history page: day, month, year, time", "j M Y, H:i:s")
    return f"{date_format(local, shown)} {timezone.get_current_timezone_name()}"
