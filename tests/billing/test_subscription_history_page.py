"""A subscription's audit history page costs the same queries for 1 saved state
as for 7: its rows are named by date, not by each past state's str(), which
would read the customer and the plan again for every row."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Subscription
from billing.subscriptions.lifecycle import subscription_set_seats
from tests.factories import CustomerFactory, published_version, subscribe


@pytest.mark.django_db
def test_the_history_page_queries_do_not_grow_with_its_rows(admin_client):
    subscription = subscribe(CustomerFactory(), published_version("p0", base_fee=D("10.00")))
    url = f"/admin/billing/subscription/{subscription.pk}/history/"
    admin_client.get(url)  # warms what Django caches once (content types)
    with CaptureQueriesContext(connection) as one_state:
        first = admin_client.get(url)
    for seats in range(2, 8):
        subscription_set_seats(
            subscription=Subscription.objects.get(pk=subscription.pk),
            seats=seats,
            at=datetime(2026, 11, 2 + seats, tzinfo=UTC),
        )
    with CaptureQueriesContext(connection) as seven_states:
        page = admin_client.get(url)

    assert first.status_code == page.status_code == 200
    assert len(seven_states) == len(one_state)
    html = page.content.decode()
    assert "7 saved states" in html
    assert "No person (the API or a task)" in html
