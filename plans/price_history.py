"""A plan version's price history: the audit rows (common.history) of the version,
its charges, their tiers and rate card rows and its feature grants, read back as
changes a person made. The rows of one save (one service call, or one admin save: they share a
change id, common.history.one_change) are one change; a change is the
difference between the version as it stood before and after it
(plans.price_wording), so the charges, tiers and rows that plans.services writes
again on every save read as what changed in them."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common.history import change_id, change_tags
from plans.feature_grants import FeatureGrant
from plans.models import (
    Charge,
    ChargeRate,
    Feature,
    Meter,
    PlanVersion,
    PriceTier,
    VersionFeature,
)
from plans.price_wording import spec_changes, status_name
from plans.pricing import TierSpec
from plans.rate_cards import rate_of
from plans.validation import ChargeSpec, VersionSpec, version_terms_spec

# Rows without a change id (written before saves had one, or backfilled by the
# migration plans/0012) are one save with the row before them when they follow
# it within this, by the same user.
ONE_SAVE = timedelta(seconds=1)

NOTHING_CHANGED = gettext_lazy("Saved with no change to the terms, charges or features")


@dataclass(frozen=True)
class PriceChange:
    """One save of a version: when, by whom (None: the API or a task; `by` names
    the command that wrote it, such as load_demo), and what changed, one sentence
    a line."""

    at: datetime
    user: object | None
    lines: tuple[str, ...]
    by: str = ""


def _audit_rows(version: PlanVersion) -> list:
    charges = list(Charge.history.filter(version_id=version.pk).select_related("history_user"))
    charge_ids = {row.id for row in charges}
    rows = [
        *PlanVersion.history.filter(id=version.pk).select_related("history_user"),
        *charges,
        *PriceTier.history.filter(charge_id__in=charge_ids).select_related("history_user"),
        *ChargeRate.history.filter(charge_id__in=charge_ids).select_related("history_user"),
        *VersionFeature.history.filter(version_id=version.pk).select_related("history_user"),
    ]
    # Rows of one table written at the same moment in the order they were written
    # (history_id); the tables in the order above.
    table = {PlanVersion: 0, Charge: 1, PriceTier: 2, ChargeRate: 3, VersionFeature: 4}
    return sorted(rows, key=lambda row: (row.history_date, table[row.instance_type], row.pk))


def _saves(rows: list) -> list[list]:
    """The rows (in the order written) grouped by save, saves in the order made."""
    saves: list[list] = []
    by_change: dict[str, list] = {}
    previous, previous_save = None, None
    for row in rows:
        change = change_id(row)
        if change is not None:
            save = by_change.get(change)
            if save is None:
                save = by_change[change] = []
                saves.append(save)
        elif (
            previous is not None
            and row.history_user_id == previous.history_user_id
            and row.history_date - previous.history_date <= ONE_SAVE
        ):
            save = previous_save
        else:
            save = []
            saves.append(save)
        save.append(row)
        previous, previous_save = row, save
    return saves


class _Names:
    """Codes and names of the meters and features the rows name, read once."""

    def __init__(self, rows: list):
        meter_ids = {row.meter_id for row in rows if row.instance_type is Charge}
        feature_ids = {row.feature_id for row in rows if row.instance_type is VersionFeature}
        meters = Meter.objects.in_bulk(meter_ids)
        features = Feature.objects.in_bulk(feature_ids)
        # A meter or feature deleted since (once nothing refers to it) keeps a name.
        self.meter_code = {pk: _("meter #%(id)s") % {"id": pk} for pk in meter_ids} | {
            pk: meter.code for pk, meter in meters.items()
        }
        self.meter_names = {meter.code: meter.name or meter.code for meter in meters.values()}
        self.feature_code = {pk: _("feature #%(id)s") % {"id": pk} for pk in feature_ids} | {
            pk: feature.code for pk, feature in features.items()
        }
        self.feature_names = {f.code: f.name or f.code for f in features.values()}


def _spec(state: dict, version_id: int, names: _Names) -> VersionSpec | None:
    """The version as the rows in `state` (the latest of each object) hold it."""
    version_row = state.get((PlanVersion, version_id))
    if version_row is None:
        return None
    live = [row for row in state.values() if row is not None]
    tiers: dict[int, list] = {}
    for row in sorted(
        (r for r in live if r.instance_type is PriceTier), key=lambda r: (r.position, r.id)
    ):
        tiers.setdefault(row.charge_id, []).append(
            TierSpec(up_to=row.up_to, unit_price=row.unit_price, flat_fee=row.flat_fee, per=row.per)
        )
    rates: dict[int, list] = {}
    for row in sorted(
        (r for r in live if r.instance_type is ChargeRate), key=lambda r: (r.position, r.id)
    ):
        rates.setdefault(row.charge_id, []).append(rate_of(row))
    charges = sorted((r for r in live if r.instance_type is Charge), key=lambda r: r.id)
    grants = sorted(
        (names.feature_code[r.feature_id], r.value)
        for r in live
        if r.instance_type is VersionFeature
    )
    return version_terms_spec(
        version_row,
        (
            ChargeSpec(
                meter=names.meter_code[row.meter_id],
                model=row.model,
                included_units=row.included_units,
                credits_per_unit=row.credits_per_unit,
                when_exhausted=row.when_exhausted,
                pricing=row.instance.pricing_spec(tiers=tuple(tiers.get(row.id, ()))),
                price_by=tuple(row.price_by or ()),
                rates=tuple(rates.get(row.id, ())),
            )
            for row in charges
        ),
        (FeatureGrant(code, tuple(v) if isinstance(v, list) else v) for code, v in grants),
    )


def _status(state: dict, version_id: int) -> str | None:
    row = state.get((PlanVersion, version_id))
    return row.status if row is not None else None


def _status_line(before: str | None, after: str | None, tags: dict[str, str]) -> list[str]:
    if before is None:
        if "copied_from" in tags:
            return [
                _("Created as a draft, copied from v%(number)s") % {"number": tags["copied_from"]}
            ]
        published = after == PlanVersion.PUBLISHED
        return [_("Created and published") if published else _("Created as a draft")]
    if before != after:
        names = {"old": status_name(before), "new": status_name(after)}
        return [_("Status: %(old)s → %(new)s") % names]
    return []


def price_history(*, version: PlanVersion) -> list[PriceChange]:
    """The version's changes, newest first."""
    rows = _audit_rows(version)
    names = _Names(rows)
    state: dict = {}
    changes = []
    for save in _saves(rows):
        before_spec, before_status = _spec(state, version.pk, names), _status(state, version.pk)
        for row in save:
            state[(row.instance_type, row.id)] = None if row.history_type == "-" else row
        after_spec, after_status = _spec(state, version.pk, names), _status(state, version.pk)
        if after_spec is None:
            continue  # the version's own rows are not there (written before its history was)
        tags = change_tags(save[0])
        lines = _status_line(before_status, after_status, tags) + spec_changes(
            before_spec,
            after_spec,
            meter_names=names.meter_names,
            feature_names=names.feature_names,
        )
        at, user = save[-1].history_date, save[0].history_user
        changes.append(PriceChange(at, user, tuple(lines), tags.get("by", "")))
    for index, change in enumerate(changes):
        if not change.lines:
            changes[index] = replace(change, lines=(str(NOTHING_CHANGED),))
    return changes[::-1]
