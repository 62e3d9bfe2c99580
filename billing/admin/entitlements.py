"""A subscription's features in words on its admin page: what it is entitled to
now (its version's grants with its deal's in place, plans.overrides, the read
the entitlements API answers from), what comes from the deal marked; and what
a deal does to its plan's features, for the deal's own text."""

from collections.abc import Iterable

from django.utils.translation import gettext as _

from plans.feature_grants import FeatureGrant
from plans.feature_text import value_text
from plans.models import Feature
from plans.overrides import overrides_from_json, subscription_spec
from plans.selectors import version_spec


def _said(value: object) -> str:
    """A value inside a sentence: 'yes' rather than 'Yes'."""
    return value_text(value).lower() if isinstance(value, bool) else value_text(value)


def _names(codes: Iterable[str]) -> dict[str, str]:
    """Feature code -> name; a code the catalog no longer has stands for itself."""
    codes = set(codes)
    names = dict(Feature.objects.filter(code__in=codes).values_list("code", "name"))
    return {code: names.get(code, code) for code in codes}


def entitlements_text(subscription) -> str:
    """'SSO: yes; Projects: 50 (deal; plan: 10); Audit log: yes (deal); Models:
    revoked by the deal'. Empty when the subscription is entitled to nothing."""
    plan = {
        grant.feature: grant.value for grant in version_spec(version=subscription.version).features
    }
    deal = {
        grant.feature: grant.value for grant in overrides_from_json(subscription.overrides).features
    }
    now = subscription_spec(subscription).features
    names = _names([*plan, *deal])
    parts = []
    for grant in now:
        names_value = {"feature": names[grant.feature], "value": _said(grant.value)}
        if grant.feature in deal and grant.feature in plan:
            text = _("%(feature)s: %(value)s (deal; plan: %(plan)s)") % {
                **names_value,
                "plan": _said(plan[grant.feature]),
            }
        elif grant.feature in deal:
            text = _("%(feature)s: %(value)s (deal)") % names_value
        else:
            text = _("%(feature)s: %(value)s") % names_value
        parts.append(text)
    parts.extend(
        _("%(feature)s: revoked by the deal") % {"feature": names[code]}
        for code, value in deal.items()
        if value is None and code in plan
    )
    return "; ".join(parts)


def deal_features_text(deal: Iterable[FeatureGrant], plan: Iterable[FeatureGrant]) -> list[str]:
    """What a deal does to its plan's features, one text each: 'Projects: 50
    (plan: 10)', 'Audit log: yes (plan: not granted)', 'Models: revoked (plan:
    gpt-4o, o1)'."""
    deal = list(deal)
    granted = {grant.feature: grant.value for grant in plan}
    names = _names(grant.feature for grant in deal)
    texts = []
    for grant in deal:
        value = _("revoked") if grant.value is None else _said(grant.value)
        before = _said(granted[grant.feature]) if grant.feature in granted else _("not granted")
        texts.append(
            _("%(feature)s: %(value)s (plan: %(plan)s)")
            % {"feature": names[grant.feature], "value": value, "plan": before}
        )
    return texts
