"""A draft side by side with its plan's latest published version: terms, each
charge by meter with every tier and rate card row (matched by its `when`), and
features; the rows that differ are marked
and say what changed (in the words of plans.price_wording)."""

from dataclasses import dataclass

from django.utils.translation import gettext, gettext_lazy

from plans.feature_text import value_text
from plans.models import Feature, Meter
from plans.price_wording import (
    NONE,
    changed,
    changed_fields,
    charge_texts,
    charge_tiers,
    field_labels,
    rate_texts,
    term_texts,
    tier_summary,
    tier_texts,
)
from plans.validation import VersionSpec

ADDED = gettext_lazy("Added in this draft")
REMOVED = gettext_lazy("Removed in this draft")
NOT_GRANTED = gettext_lazy("Not granted")


@dataclass(frozen=True)
class CompareRow:
    label: str
    published: str
    draft: str
    change: str = ""


@dataclass(frozen=True)
class CompareSection:
    title: str
    rows: tuple[CompareRow, ...]

    @property
    def changed(self) -> int:
        return sum(1 for row in self.rows if row.change)


def _change(published: str, draft: str) -> str:
    return "" if published == draft else changed(published, draft)


def _tier_rows(published: VersionSpec, draft: VersionSpec, old, new) -> list[CompareRow]:
    rows = []
    before, after = charge_tiers(old), charge_tiers(new)
    for index in range(max(len(before), len(after))):
        was = tier_summary(before[index], published.currency) if index < len(before) else NONE
        now = tier_summary(after[index], draft.currency) if index < len(after) else NONE
        if index >= len(before):
            change = str(ADDED)
        elif index >= len(after):
            change = str(REMOVED)
        else:
            change = "; ".join(
                changed_fields(
                    tier_texts(before[index], published.currency),
                    tier_texts(after[index], draft.currency),
                )
            )
        rows.append(
            CompareRow(gettext("Tier %(number)s") % {"number": index + 1}, was, now, change)
        )
    return rows


def _charge_section(published: VersionSpec, draft: VersionSpec, meter: str, name: str):
    old = next((c for c in published.charges if c.meter == meter), None)
    new = next((c for c in draft.charges if c.meter == meter), None)
    old_texts = charge_texts(old, published.currency) if old else {}
    new_texts = charge_texts(new, draft.currency) if new else {}
    rows = []
    for label in field_labels(old_texts, new_texts):
        was, now = old_texts.get(label, NONE), new_texts.get(label, NONE)
        change = str(ADDED) if old is None else str(REMOVED) if new is None else _change(was, now)
        rows.append(CompareRow(label, was, now, change))
    rows.extend(_tier_rows(published, draft, old, new))
    rows.extend(_rate_rows(published, draft, old, new))
    return CompareSection(gettext("Charge: %(meter)s") % {"meter": name}, tuple(rows))


def _rate_rows(published: VersionSpec, draft: VersionSpec, old, new) -> list[CompareRow]:
    """A rate card's rows matched by their `when`: the draft's order, then those
    it dropped."""
    before, after = rate_texts(old, published.currency), rate_texts(new, draft.currency)
    rows = []
    for when in [*after, *(w for w in before if w not in after)]:
        name, was = before.get(when, ("", NONE))
        name, now = after.get(when, (name, NONE))
        change = str(ADDED) if when not in before else str(REMOVED) if when not in after else ""
        rows.append(CompareRow(name[:1].upper() + name[1:], was, now, change or _change(was, now)))
    return rows


def compare_sections(published: VersionSpec, draft: VersionSpec) -> list[CompareSection]:
    """The two versions row by row: terms, charges (the draft's order, then those
    it dropped) and features."""
    old_terms, new_terms = term_texts(published), term_texts(draft)
    sections = [
        CompareSection(
            gettext("Terms"),
            tuple(
                CompareRow(label, old_terms[label], text, _change(old_terms[label], text))
                for label, text in new_terms.items()
            ),
        )
    ]
    meters = list(dict.fromkeys(c.meter for c in (*draft.charges, *published.charges)))
    names = {m.code: m.name or m.code for m in Meter.objects.filter(code__in=meters)}
    sections.extend(
        _charge_section(published, draft, meter, names.get(meter, meter)) for meter in meters
    )
    old_grants = {g.feature: value_text(g.value) for g in published.features}
    new_grants = {g.feature: value_text(g.value) for g in draft.features}
    codes = list(dict.fromkeys([*new_grants, *old_grants]))
    features = {f.code: f.name or f.code for f in Feature.objects.filter(code__in=codes)}
    rows = []
    for code in codes:
        was, now = old_grants.get(code, str(NOT_GRANTED)), new_grants.get(code, str(NOT_GRANTED))
        change = (
            str(ADDED) if code not in old_grants else str(REMOVED) if code not in new_grants else ""
        )
        rows.append(CompareRow(features.get(code, code), was, now, change or _change(was, now)))
    sections.append(CompareSection(gettext("Features"), tuple(rows)))
    return sections
