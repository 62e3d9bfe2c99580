"""`setup_roles`: the admin's groups (Finance, Operations, Support) and their
permissions, set up and put back by the command; what each role may and may not do,
by permission. What the roles do through the admin: tests/test_roles.py."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command

from customers.management.commands import setup_roles

pytestmark = pytest.mark.django_db


def run_setup_roles() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("setup_roles", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def group_permissions() -> dict[str, list[str]]:
    return {
        group.name: sorted(
            f"{p.content_type.app_label}.{p.codename}"
            for p in group.permissions.select_related("content_type")
        )
        for group in Group.objects.order_by("name")
    }


def user_with_role(role: str) -> User:
    user = User.objects.create_user(username=role.lower(), is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def test_setup_roles_twice_leaves_the_same_groups_and_permissions(db):
    run_setup_roles()
    first = group_permissions()

    run_setup_roles()

    assert group_permissions() == first
    assert list(first) == ["Finance", "Operations", "Support"]


def test_setup_roles_puts_a_group_back_to_its_role(db):
    # given: a permission added to Support by hand, one taken from Finance
    run_setup_roles()
    expected = group_permissions()
    support, finance = Group.objects.get(name="Support"), Group.objects.get(name="Finance")
    support.permissions.add(Permission.objects.get(codename="change_customer"))
    finance.permissions.remove(Permission.objects.get(codename="void_invoice"))

    # when
    out, _ = run_setup_roles()

    # then
    assert group_permissions() == expected
    assert "Support: updated" in out


def test_every_permission_named_exists_once_migrated(db):
    names = [name for role in setup_roles.ROLES.values() for name in role]

    found, missing = setup_roles.permissions_named(names)

    assert missing == []
    assert len(found) == len(set(names))


def test_a_permission_not_there_yet_is_reported_and_skipped(db, monkeypatch):
    roles = {**setup_roles.ROLES, "Support": [*setup_roles.SUPPORT, "plans.run_nothing"]}
    monkeypatch.setattr(setup_roles, "ROLES", roles)

    _, err = run_setup_roles()

    assert "Support: no permission plans.run_nothing (not migrated yet?); skipped" in err
    assert group_permissions()["Support"] == sorted(set(setup_roles.SUPPORT))


@pytest.mark.parametrize(
    ("role", "allowed", "refused"),
    [
        (
            "Finance",
            [
                "plans.publish_planversion",
                "plans.change_planversion",
                "invoices.void_invoice",
                "customers.add_apikey",
                "wallets.change_wallet",
                "wallets.view_credit_revenue",
                "billing.view_margins",
                "billing.set_deal_subscription",
                "plans.add_feature",
                "plans.change_feature",
                "plans.add_versionfeature",
                "plans.change_versionfeature",
                "plans.delete_versionfeature",
                "plans.add_costrate",
                "plans.view_costrate",
                "invoices.view_dunningpolicy",
            ],
            [
                "customers.change_customer",
                "invoices.add_dunningpolicy",
                "billing.add_subscription",
                "billing.change_subscription",
                "invoices.change_invoice",
                "plans.delete_planversion",
                "plans.delete_feature",
                "plans.change_costrate",
                "plans.delete_costrate",
            ],
        ),
        (
            "Operations",
            [
                "customers.add_customer",
                "billing.add_subscription",
                "billing.change_subscription",
                "invoices.view_invoice",
                "plans.view_planversion",
                "plans.view_feature",
                "plans.view_versionfeature",
                "invoices.add_dunningpolicy",
                "invoices.change_dunningpolicy",
                "invoices.add_dunningstep",
                "invoices.delete_dunningstep",
                "invoices.view_dunningrun",
            ],
            [
                "customers.view_apikey",
                "invoices.delete_dunningpolicy",
                "invoices.change_dunningrun",
                "plans.change_planversion",
                "plans.add_feature",
                "plans.change_versionfeature",
                "plans.publish_planversion",
                "invoices.void_invoice",
                "invoices.finalize_invoice",
                "wallets.change_wallet",
                "wallets.view_credit_revenue",
                "billing.view_margins",
                "billing.set_deal_subscription",
                "plans.add_costrate",
                "plans.view_costrate",
            ],
        ),
        (
            "Support",
            [
                "customers.view_customer",
                "billing.view_subscription",
                "invoices.view_invoice",
                "wallets.view_ledgerentry",
                "plans.view_plan",
                "plans.view_feature",
                "plans.view_versionfeature",
                "billing.view_alert",
                "billing.view_webhookdelivery",
            ],
            [
                "customers.view_apikey",
                "customers.change_customer",
                "billing.change_subscription",
                "billing.view_webhookendpoint",
                "invoices.void_invoice",
                "wallets.view_credit_revenue",
                "billing.view_margins",
                "plans.view_costrate",
            ],
        ),
    ],
)
def test_permission_matrix(role, allowed, refused):
    run_setup_roles()
    user = user_with_role(role)

    assert {name: user.has_perm(name) for name in allowed + refused} == {
        **dict.fromkeys(allowed, True),
        **dict.fromkeys(refused, False),
    }


def test_support_can_only_view_and_only_finance_has_api_keys(db):
    run_setup_roles()
    roles = group_permissions()

    assert all(name.split(".")[1].startswith("view_") for name in roles["Support"])
    assert [role for role, names in roles.items() if any("apikey" in n for n in names)] == [
        "Finance"
    ]
