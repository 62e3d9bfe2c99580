from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command


@pytest.fixture
def finance_client(client, db):
    """The test client logged in as a staff user of the Finance group (setup_roles)."""
    call_command("setup_roles", stdout=StringIO(), stderr=StringIO())
    user = User.objects.create_user("fin", password="fin-password-1", is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    client.force_login(user)
    return client
