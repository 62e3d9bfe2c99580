"""The confirmation page in front of every irreversible admin action (publish,
archive, void, mark uncollectible, a bulk migration): what will happen, to how
many customers, and whether it can be undone, with one button that does it and
one link that leaves everything as it was.

An action view shows the page on GET (or on a list action's first POST) and acts
only on a POST carrying CONFIRM_FIELD, which only the page's button sends."""

from dataclasses import dataclass, field

from django.contrib.admin import ModelAdmin
from django.http import HttpRequest
from django.template.response import TemplateResponse

CONFIRM_FIELD = "confirmed"


@dataclass(frozen=True)
class Confirmation:
    """What the page says. `consequences` are full sentences, one per line;
    `hidden` are the form fields the confirming POST must carry again (a list
    action's name and selected ids, say)."""

    title: str
    consequences: list[str]
    confirm_label: str
    cancel_url: str
    irreversible: bool = True
    hidden: dict[str, str | list[str]] = field(default_factory=dict)


def is_confirmed(request: HttpRequest) -> bool:
    """True for the POST the confirmation page's button sends, and only for it."""
    return request.method == "POST" and request.POST.get(CONFIRM_FIELD) == "yes"


def confirmation_page(
    request: HttpRequest, model_admin: ModelAdmin, confirmation: Confirmation, obj=None
) -> TemplateResponse:
    hidden = []
    for name, value in confirmation.hidden.items():
        values = value if isinstance(value, list) else [value]
        hidden.extend((name, str(v)) for v in values)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "object": obj,
        "title": confirmation.title,
        "confirmation": confirmation,
        "hidden_fields": hidden,
        "confirm_field": CONFIRM_FIELD,
    }
    return TemplateResponse(request, "admin/confirm_action.html", context)
