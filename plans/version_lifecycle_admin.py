"""A plan version's lifecycle on its admin page: Publish and Archive (each after
a confirmation page that says what will happen, to how many customers) and New
draft (a copy to change prices in). The list's publish and archive actions show
the same confirmation for the versions selected. Every change goes through
plans.services; a refusal comes back as a message in words."""

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from billing.core.admin_confirm import Confirmation, confirmation_page, is_confirmed
from billing.core.errors import BillingError
from billing.subscriptions.selectors import live_subscription_counts
from plans import services
from plans.models import PlanVersion
from plans.selectors import versions_by_plan_name


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


class VersionLifecycleMixin:
    """Publish, Archive and New draft for PlanVersionAdmin: buttons on the
    version's page, and the list's actions."""

    # Publishing and archiving are permissions of their own (roles: setup_roles).
    def has_publish_permission(self, request):
        return request.user.has_perm("plans.publish_planversion")

    def has_archive_permission(self, request):
        return request.user.has_perm("plans.archive_planversion")

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/publish/", view(self.publish_view), name=f"{name}_publish"),
            path("<path:object_id>/archive/", view(self.archive_view), name=f"{name}_archive"),
            path(
                "<path:object_id>/new-draft/", view(self.new_draft_view), name=f"{name}_new_draft"
            ),
            *super().get_urls(),
        ]

    def lifecycle_buttons(self, request, version: PlanVersion) -> list[dict]:
        """The buttons the version's status and the user's permissions allow."""
        buttons = []
        if version.status == PlanVersion.DRAFT and self.has_publish_permission(request):
            buttons.append({"id": "publish-version", "label": gettext("Publish"), "url": "publish"})
        if version.status != PlanVersion.ARCHIVED and self.has_archive_permission(request):
            buttons.append({"id": "archive-version", "label": gettext("Archive"), "url": "archive"})
        if self.has_add_permission(request):
            buttons.append(
                {"id": "new-draft", "label": gettext("New draft"), "url": "new_draft", "post": True}
            )
        for button in buttons:
            button["url"] = reverse(f"admin:plans_planversion_{button['url']}", args=[version.pk])
        return buttons

    def change_view(self, request, object_id, form_url="", extra_context=None):
        version = self.get_object(request, unquote(object_id))
        if version is not None:
            extra_context = {
                **(extra_context or {}),
                "lifecycle_buttons": self.lifecycle_buttons(request, version),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def _version_or_404(self, request, object_id) -> PlanVersion:
        version = self.get_object(request, unquote(object_id))
        if version is None:
            raise Http404("No such plan version.")
        return version

    def _page(self, version: PlanVersion):
        return redirect(reverse("admin:plans_planversion_change", args=[version.pk]))

    def publish_view(self, request, object_id):
        version = self._version_or_404(request, object_id)
        if not self.has_publish_permission(request):
            raise PermissionDenied
        if version.status != PlanVersion.DRAFT:
            self.message_user(
                request,
                gettext("{version} is not a draft: only a draft can be published.").format(
                    version=version
                ),
                messages.ERROR,
            )
            return self._page(version)
        if is_confirmed(request):
            self._publish(request, version)
            return self._page(version)
        versions_of_plan = version.plan.versions.values_list("pk", flat=True)
        counts = live_subscription_counts(version_ids=versions_of_plan)
        return confirmation_page(
            request,
            self,
            Confirmation(
                title=gettext("Publish {version}?").format(version=version),
                consequences=publish_consequences(version, counts),
                confirm_label=gettext("Publish {version}").format(version=version),
                cancel_url=reverse("admin:plans_planversion_change", args=[version.pk]),
            ),
            obj=version,
        )

    def archive_view(self, request, object_id):
        version = self._version_or_404(request, object_id)
        if not self.has_archive_permission(request):
            raise PermissionDenied
        if version.status == PlanVersion.ARCHIVED:
            self.message_user(
                request,
                gettext("{version} is archived already.").format(version=version),
                messages.ERROR,
            )
            return self._page(version)
        if is_confirmed(request):
            self._archive(request, version)
            return self._page(version)
        counts = live_subscription_counts(version_ids=[version.pk])
        return confirmation_page(
            request,
            self,
            Confirmation(
                title=gettext("Archive {version}?").format(version=version),
                consequences=archive_consequences(version, counts),
                confirm_label=gettext("Archive {version}").format(version=version),
                cancel_url=reverse("admin:plans_planversion_change", args=[version.pk]),
            ),
            obj=version,
        )

    def new_draft_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        version = self._version_or_404(request, object_id)
        if not self.has_add_permission(request):
            raise PermissionDenied
        try:
            draft = services.plan_version_copy_as_draft(version=version)
        except BillingError as error:
            self.message_user(request, refusal_text(version, "copied", error), messages.ERROR)
            return self._page(version)
        self.message_user(
            request,
            gettext("{draft} created as a draft from v{number}").format(
                draft=draft, number=version.number
            ),
            messages.SUCCESS,
        )
        return self._page(draft)

    def _publish(self, request, version: PlanVersion) -> None:
        if version.status != PlanVersion.DRAFT:
            self.message_user(
                request,
                gettext("{version} was not published: it is not a draft.").format(version=version),
                messages.ERROR,
            )
            return
        try:
            published = services.plan_version_publish(version=version)
        except BillingError as error:
            self.message_user(request, refusal_text(version, "published", error), messages.ERROR)
        else:
            self.message_user(
                request, gettext("{version} published").format(version=published), messages.SUCCESS
            )

    def _archive(self, request, version: PlanVersion) -> None:
        try:
            archived = services.plan_version_archive(version=version)
        except BillingError as error:
            self.message_user(request, refusal_text(version, "archived", error), messages.ERROR)
        else:
            self.message_user(
                request, gettext("{version} archived").format(version=archived), messages.SUCCESS
            )

    def _confirm_selected(self, request, queryset, action: str, consequences) -> object:
        """The confirmation page for a list action on the versions selected."""
        versions = list(versions_by_plan_name(queryset.select_related("plan")))
        counts = live_subscription_counts(
            version_ids=PlanVersion.objects.filter(
                plan__in={v.plan_id for v in versions}
            ).values_list("pk", flat=True)
        )
        title, confirm = selected_words(action, versions)
        return confirmation_page(
            request,
            self,
            Confirmation(
                title=title,
                consequences=[s for v in versions for s in consequences(v, counts)],
                confirm_label=confirm,
                cancel_url=reverse("admin:plans_planversion_changelist"),
                hidden={
                    "action": action,
                    ACTION_CHECKBOX_NAME: [str(v.pk) for v in versions],
                },
            ),
        )

    @admin.action(description=_("Publish the selected versions…"), permissions=["publish"])
    def publish(self, request, queryset):
        if not is_confirmed(request):
            return self._confirm_selected(request, queryset, "publish", publish_consequences)
        for version in queryset.select_related("plan"):
            self._publish(request, version)
        return None

    @admin.action(description=_("Archive the selected versions…"), permissions=["archive"])
    def archive(self, request, queryset):
        if not is_confirmed(request):
            return self._confirm_selected(request, queryset, "archive", archive_consequences)
        for version in queryset.select_related("plan"):
            if version.status == PlanVersion.ARCHIVED:
                self.message_user(
                    request,
                    gettext("{version} is archived already.").format(version=version),
                    messages.ERROR,
                )
            else:
                self._archive(request, version)
        return None

    @admin.action(description=_("New draft from each selected version"), permissions=["add"])
    def copy_as_draft(self, request, queryset):
        for version in queryset.select_related("plan"):
            try:
                draft = services.plan_version_copy_as_draft(version=version)
            except BillingError as error:
                self.message_user(request, refusal_text(version, "copied", error), messages.ERROR)
            else:
                self.message_user(
                    request,
                    gettext("{draft} created as a draft from v{number}").format(
                        draft=draft, number=version.number
                    ),
                )
