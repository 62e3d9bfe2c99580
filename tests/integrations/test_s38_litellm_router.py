"""S38 (../shared/SCENARIOS.md) through the real client: the installed litellm's
Router (what LiteLLM's proxy runs) serves `gpt-4o` by the deployment `openai/gpt-4o`
and the fine-tune `acme-ft-gpt-4o-2025`, its model calls mocked, logging to the live
server through LiteLLM's own generic_api callback on 10 October. October closes at
4.50; finance maps the fine-tune to gpt-4o; POST /rerate previews 7.50 (difference
3.00), applies it as an invoice naming October's, and issues nothing the second
time."""

import asyncio
from decimal import Decimal as D

import pytest
import time_machine

from billing.invoicing.close import periods_close
from billing.models import UsageEvent
from invoices.models import Invoice
from tests.factories import ApiKeyFactory
from tests.integrations.test_litellm_real import Gateway, mocked, sdk  # noqa: F401 (a fixture)
from tests.integrations.test_s38_rerating import (
    FINE_TUNE,
    NOV_1,
    OCT_1,
    OCT_10,
    OCTOBER,
    map_models,
    october,  # noqa: F401 (a fixture)
    rerate,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_s38_through_litellms_router_then_rerated_once(
    sdk,  # noqa: F811
    live_server,
    october,  # noqa: F811
):
    # given: the Router's two deployments, as a proxy's config.yaml names them
    secret = ApiKeyFactory(name="litellm-proxy", scopes=["events:write"]).secret
    router = sdk.Router(
        model_list=[
            {"model_name": name, "litellm_params": {"model": deployment, "api_key": "not-a-key"}}
            for name, deployment in [
                ("gpt-4o", "openai/gpt-4o"),
                (FINE_TUNE, f"openai/{FINE_TUNE}"),
            ]
        ]
    )
    calls = [
        ("gpt-4o", mocked(sdk, "chatcmpl-4o", "gpt-4o", prompt=1_000_000, completion=0)),
        (FINE_TUNE, mocked(sdk, "chatcmpl-ft", FINE_TUNE, prompt=2_000_000, completion=0)),
    ]

    async def session():
        url = f"{live_server.url}/api/v1/integrations/litellm"
        gateway = Gateway(sdk, url, secret, "json_array")
        for group, answer in calls:
            await router.acompletion(
                model=group,
                messages=[{"role": "user", "content": "hi"}],
                user="acme",
                mock_response=answer,
            )
        await gateway.logged(len(calls))
        return await gateway.flush()

    # when: the calls are made on 10 October
    with time_machine.travel(OCT_10, tick=True):
        status, answer = asyncio.run(session())

    # then: gpt-4o priced at its row through its model group, the fine-tune at the
    # default row and named as unpriced
    assert status == 202, answer
    assert (answer["calls"], answer["rejected"], answer["unpriced_models"]) == (2, [], [FINE_TUNE])
    sent = {
        e.event_id: (e.properties["model"], e.properties["source_model"])
        for e in UsageEvent.objects.filter(event_id__startswith="chatcmpl-")
    }
    assert sent == {
        "chatcmpl-4o:input": ("gpt-4o", "openai/gpt-4o"),
        "chatcmpl-ft:input": (FINE_TUNE, f"openai/{FINE_TUNE}"),
    }

    # when: October closes
    with time_machine.travel(NOV_1, tick=False):
        periods_close(as_of=NOV_1)

    # then: usage 4.50 (2.50 + 2.00), VAT 20 % on it
    october_invoice = Invoice.objects.get(reason=Invoice.PERIOD, period_start=OCT_1)
    assert (october_invoice.subtotal, october_invoice.tax) == (D("4.50"), D("0.90"))

    # when: finance maps the fine-tune to gpt-4o, previews, applies, applies again
    map_models({FINE_TUNE: "gpt-4o"})
    preview = rerate(OCTOBER | {"dry_run": True}).json()
    applied = rerate(OCTOBER | {"dry_run": False}).json()
    again = rerate(OCTOBER | {"dry_run": False}).json()

    # then: billed 4.50, re-rated 7.50, difference 3.00, invoiced once naming October's
    (row,) = preview["results"]
    assert (row["invoice"], row["billed"], row["rerated"], row["difference"]) == (
        october_invoice.number,
        "4.50",
        "7.50",
        "3.00",
    )
    correction = Invoice.objects.get(reason=Invoice.CORRECTION)
    assert applied["results"][0]["issued"] == correction.number
    assert (correction.subtotal, correction.total, correction.corrects) == (
        D("3.00"),
        D("3.60"),
        october_invoice,
    )
    (row,) = again["results"]
    assert (row["billed"], row["rerated"], row["difference"], row["issued"]) == (
        "7.50",
        "7.50",
        "0.00",
        None,
    )
    assert Invoice.objects.filter(reason=Invoice.CORRECTION).count() == 1
