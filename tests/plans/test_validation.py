"""plans.validation on plain values: no database. Each rule is refused with its
dotted field path and message; valid input raises nothing."""

from decimal import Decimal

import pytest

from common.errors import InvalidRequest
from plans.pricing import PricingSpec, TierSpec
from plans.validation import (
    ChargeSpec,
    FieldErrors,
    VersionSpec,
    check_number,
    check_tiers,
    validate_credit_pack,
    validate_customer,
    validate_meter,
    validate_version,
)

D = Decimal
METERS = {"prompts", "sms", "agent_runs", "tokens"}
PER_UNIT = PricingSpec(scheme="per_unit", unit_price=D("0.05"))


def version_errors(*charges: ChargeSpec, **terms) -> dict[str, list[str]]:
    spec = VersionSpec(**({"currency": "USD"} | terms), charges=charges)
    with pytest.raises(InvalidRequest) as refused:
        validate_version(spec, known_meters=METERS)
    assert refused.value.status_code == 400
    assert refused.value.message.startswith("invalid plan version: ")
    return refused.value.fields


def tier_errors(*tiers: TierSpec) -> dict[str, list[str]]:
    errors = FieldErrors()
    check_tiers(errors, "tiers", tiers)
    return errors.errors


def meter_errors(**fields) -> dict[str, list[str]]:
    values = {
        "code": "m",
        "name": "M",
        "event_name": "e",
        "aggregation": "count",
        "value_property": "",
        "unique_property": "",
        "filters": {},
    } | fields
    with pytest.raises(InvalidRequest) as refused:
        validate_meter(**values)
    assert refused.value.message.startswith("invalid meter: ")
    return refused.value.fields


# check_tiers


def test_ascending_tiers_with_an_open_last_tier_are_valid():
    assert tier_errors(TierSpec(D(100), D(1)), TierSpec(D(200), D(1)), TierSpec(None, D(1))) == {}
    assert tier_errors(TierSpec(None, D("0.5"))) == {}


def test_no_tiers():
    assert tier_errors() == {"tiers": ["A graduated or volume price needs at least one tier"]}


def test_tiers_must_ascend():
    assert tier_errors(TierSpec(D(100), D(1)), TierSpec(D(50), D(1)), TierSpec(None, D(1))) == {
        "tiers.1.up_to": ["Tiers must rise: each 'Up to' must be above the one before (100)"]
    }


def test_equal_bounds_do_not_ascend():
    assert tier_errors(TierSpec(D(100), D(1)), TierSpec(D(100), D(1)), TierSpec(None, D(1))) == {
        "tiers.1.up_to": ["Tiers must rise: each 'Up to' must be above the one before (100)"]
    }


def test_descent_is_measured_from_the_last_valid_bound():
    # tier 1 is refused; tier 2 is compared with tier 0's bound, not tier 1's
    assert tier_errors(
        TierSpec(D(100), D(1)),
        TierSpec(D(-5), D(1)),
        TierSpec(D(150), D(1)),
        TierSpec(None, D(1)),
    ) == {"tiers.1.up_to": ["Must be more than zero"]}


def test_only_the_last_tier_may_be_open():
    assert tier_errors(TierSpec(D(100), D(1)), TierSpec(None, D(1)), TierSpec(None, D(1))) == {
        "tiers.1.up_to": ["Only the last tier has no upper limit: fill in 'Up to' for this one"]
    }


def test_the_last_tier_must_be_open():
    assert tier_errors(TierSpec(D(100), D(1)), TierSpec(D(200), D(1))) == {
        "tiers.1.up_to": ["The last tier needs no upper limit: leave 'Up to' empty"]
    }


def test_a_single_closed_tier_is_refused():
    assert tier_errors(TierSpec(D(100), D(1))) == {
        "tiers.0.up_to": ["The last tier needs no upper limit: leave 'Up to' empty"]
    }


def test_first_bound_must_be_positive():
    assert tier_errors(TierSpec(D(0), D(1)), TierSpec(None, D(1))) == {
        "tiers.0.up_to": ["Must be more than zero"]
    }


def test_tier_prices_and_fees_are_checked():
    assert tier_errors(TierSpec(D(100), D(-1), D("NaN")), TierSpec(None, D("Infinity"), D(-2))) == {
        "tiers.0.unit_price": ["Cannot be negative"],
        "tiers.0.flat_fee": ["Enter a finite number"],
        "tiers.1.unit_price": ["Enter a finite number"],
        "tiers.1.flat_fee": ["Cannot be negative"],
    }


def test_tier_per_must_be_a_positive_finite_number():
    assert tier_errors(
        TierSpec(D(100), D(1), per=D(0)),
        TierSpec(D(200), D(1), per=D(-1000)),
        TierSpec(D(300), D(1), per=D("NaN")),
        TierSpec(None, D(1), per=D("0.00000000001")),
    ) == {
        "tiers.0.per": ["Must be more than zero"],
        "tiers.1.per": ["Must be more than zero"],
        "tiers.2.per": ["Enter a finite number"],
        "tiers.3.per": ["At most 10 decimal places"],
    }


def test_tiers_per_a_million_or_a_thousand_are_accepted():
    assert (
        tier_errors(
            TierSpec(D(1_000_000), D("2.50"), per=D(1_000_000)),
            TierSpec(None, D("0.002"), D(5), per=D(1000)),
        )
        == {}
    )


def test_tier_without_unit_price():
    assert tier_errors(TierSpec(None, None)) == {
        "tiers.0.unit_price": ["Each tier needs a unit price (0 for free units)"]
    }


# check_number


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (None, {"required": True}, "This field is required"),
        (D("NaN"), {}, "Enter a finite number"),
        (D("sNaN"), {}, "Enter a finite number"),
        (D("-Infinity"), {}, "Enter a finite number"),
        (D(-1), {}, "Cannot be negative"),
        (D(0), {"positive": True}, "Must be more than zero"),
        (D("0.00000000001"), {}, "At most 10 decimal places"),
        (D("1.005"), {"currency": "USD"}, "USD amounts have at most 2 decimal places"),
        (D("1.5"), {"currency": "JPY"}, "JPY amounts are whole numbers"),
        (True, {}, "Enter a number"),
        ("1", {}, "Enter a number"),
        (1.5, {}, "Enter a number"),
    ],
)
def test_check_number_refuses(value, kwargs, message):
    errors = FieldErrors()

    check_number(errors, "x", value, **kwargs)

    assert errors.errors == {"x": [message]}


@pytest.mark.parametrize(
    ("value", "kwargs"),
    [
        (None, {}),
        (D(0), {}),
        (D("-0"), {}),
        (D("0.0000000001"), {}),
        (D("1.500"), {"currency": "USD"}),
        (D("100.000"), {"currency": "JPY"}),
        (D("0.001"), {"currency": "BHD"}),
        (7, {"positive": True}),
    ],
)
def test_check_number_accepts(value, kwargs):
    errors = FieldErrors()

    check_number(errors, "x", value, **kwargs)

    assert errors.errors == {}


# validate_version


def test_a_valid_version_raises_nothing():
    spec = VersionSpec(
        currency="USD",
        base_fee=D("19.99"),
        charges=(
            ChargeSpec("prompts", "overage", D(200), pricing=PER_UNIT),
            ChargeSpec("sms", "hard_cap", D(500)),
            ChargeSpec("agent_runs", "credits", credits_per_unit=D(1)),
            ChargeSpec("tokens", "balance", pricing=PricingSpec("per_unit", D("0.0000025"))),
        ),
    )

    validate_version(spec, known_meters=METERS)


def test_one_charge_per_meter():
    assert version_errors(
        ChargeSpec("prompts", "overage", pricing=PER_UNIT),
        ChargeSpec("sms", "hard_cap", D(1)),
        ChargeSpec("prompts", "credits", credits_per_unit=D(1)),
    ) == {
        "charges.2.meter": [
            "This meter is charged already (charge 1): a version charges each meter once"
        ]
    }


def test_unknown_meter():
    assert version_errors(ChargeSpec("nope", "overage", pricing=PER_UNIT)) == {
        "charges.0.meter": ["Unknown meter 'nope': create it under Meters first"]
    }


def test_tier_paths_are_nested_under_the_charge():
    pricing = PricingSpec("volume", tiers=(TierSpec(D(10), D(1)), TierSpec(D(5), D(1))))

    fields = version_errors(
        ChargeSpec("sms", "hard_cap", D(1)), ChargeSpec("prompts", "overage", pricing=pricing)
    )

    assert fields == {
        "charges.1.pricing.tiers.1.up_to": [
            "The last tier needs no upper limit: leave 'Up to' empty"
        ]
    }


@pytest.mark.parametrize(
    ("charge", "fields"),
    [
        (
            ChargeSpec("agent_runs", "credits"),
            {"charges.0.credits_per_unit": ["A credits charge needs the credits each unit uses"]},
        ),
        (
            ChargeSpec("agent_runs", "credits", credits_per_unit=D(0)),
            {"charges.0.credits_per_unit": ["Must be more than zero"]},
        ),
        (
            ChargeSpec("agent_runs", "credits", credits_per_unit=D(1), pricing=PER_UNIT),
            {
                "charges.0.pricing": [
                    "A credits charge has no price unless it bills when the credits run out: "
                    "remove the price or set 'When exhausted' to Bill"
                ]
            },
        ),
        (
            ChargeSpec("agent_runs", "credits", D(5), credits_per_unit=D(1)),
            {
                "charges.0.included_units": [
                    "A credits charge draws from a wallet and has no included units: leave it empty"
                ]
            },
        ),
        (
            ChargeSpec("prompts", "overage", D(10)),
            {"charges.0.pricing": ["A soft cap charge needs a price: pick a pricing scheme"]},
        ),
        (
            ChargeSpec("tokens", "balance"),
            {"charges.0.pricing": ["A balance charge needs a price: pick a pricing scheme"]},
        ),
        (
            ChargeSpec("sms", "hard_cap", D(500), pricing=PER_UNIT),
            {"charges.0.pricing": ["A hard cap charge has no price: remove the pricing"]},
        ),
        (
            ChargeSpec("sms", "hard_cap"),
            {
                "charges.0.included_units": [
                    "A hard cap charge needs its included units: the usage allowed each period"
                ]
            },
        ),
        (
            ChargeSpec("sms", "hard_cap", D(-1)),
            {"charges.0.included_units": ["Cannot be negative"]},
        ),
        (
            ChargeSpec("prompts", "overage", pricing=PER_UNIT, credits_per_unit=D(1)),
            {
                "charges.0.credits_per_unit": [
                    "Only credits charges use credits: leave it empty for a soft cap charge"
                ]
            },
        ),
        (
            ChargeSpec("prompts", "soft", pricing=PER_UNIT),
            {
                "charges.0.model": [
                    "Pick a consumption model: soft cap, hard cap, credits or balance"
                ]
            },
        ),
        (
            ChargeSpec("prompts", "overage", pricing=PER_UNIT, pricing_currency="EUR"),
            {
                "charges.0.pricing.currency": [
                    "A version bills in one currency: this price is in EUR, the version in USD"
                ]
            },
        ),
        (
            ChargeSpec(
                "prompts",
                "overage",
                pricing=PricingSpec("per_unit", D(1), tiers=(TierSpec(None, D(1)),)),
            ),
            {
                "charges.0.pricing.tiers": [
                    "Only graduated and volume prices have tiers: remove them for a per unit price"
                ]
            },
        ),
        (
            ChargeSpec("prompts", "overage", pricing=PricingSpec("package", package_price=D(1))),
            {
                "charges.0.pricing.package_size": [
                    "A package price needs its package size: how many units a package holds"
                ]
            },
        ),
        (
            ChargeSpec(
                "prompts",
                "overage",
                pricing=PricingSpec("package", package_size=D(0), package_price=D(1)),
            ),
            {"charges.0.pricing.package_size": ["Must be more than zero"]},
        ),
        (
            ChargeSpec(
                "prompts",
                "overage",
                pricing=PricingSpec("package", D(1), package_size=D(10), package_price=D(1)),
            ),
            {
                "charges.0.pricing.unit_price": [
                    "A package price has no unit price here: leave it empty"
                ]
            },
        ),
        (
            ChargeSpec("prompts", "overage", pricing=PricingSpec("per_unit", D(1), D(10))),
            {
                "charges.0.pricing.package_size": [
                    "Only a package price takes this: leave it empty for a per unit price"
                ]
            },
        ),
        (
            ChargeSpec("prompts", "overage", pricing=PricingSpec("graduated")),
            {"charges.0.pricing.tiers": ["A graduated or volume price needs at least one tier"]},
        ),
        (
            ChargeSpec("prompts", "overage", pricing=PricingSpec("flat")),
            {
                "charges.0.pricing.scheme": [
                    "Pick a pricing scheme: per unit, package, graduated or volume"
                ]
            },
        ),
    ],
)
def test_charge_rules(charge, fields):
    assert version_errors(charge) == fields


def test_a_price_per_million_units_is_valid():
    pricing = PricingSpec("per_unit", D("2.50"), per=D(1_000_000))

    validate_version(
        VersionSpec(currency="USD", charges=(ChargeSpec("tokens", "overage", pricing=pricing),)),
        known_meters=METERS,
    )


@pytest.mark.parametrize(
    ("charge", "fields"),
    [
        (
            ChargeSpec("tokens", "overage", pricing=PricingSpec("per_unit", D(1), per=D(0))),
            {"charges.0.pricing.per": ["Must be more than zero"]},
        ),
        (
            ChargeSpec("tokens", "overage", pricing=PricingSpec("per_unit", D(1), per=D("-1"))),
            {"charges.0.pricing.per": ["Must be more than zero"]},
        ),
        (
            ChargeSpec(
                "tokens", "overage", pricing=PricingSpec("per_unit", D(1), per=D("Infinity"))
            ),
            {"charges.0.pricing.per": ["Enter a finite number"]},
        ),
        (
            ChargeSpec("tokens", "overage", pricing=PricingSpec("per_unit", D(1), per=None)),
            {
                "charges.0.pricing.per": [
                    "Say how many units the price is for: 1 for a price per unit"
                ]
            },
        ),
        (
            ChargeSpec(
                "tokens",
                "overage",
                pricing=PricingSpec(
                    "package", package_size=D(1000), package_price=D(1), per=D(1000)
                ),
            ),
            {
                "charges.0.pricing.per": [
                    "'Per' applies to per unit prices and tiers: a package's size says how "
                    "many units its price is for"
                ]
            },
        ),
        (
            ChargeSpec(
                "tokens",
                "overage",
                pricing=PricingSpec("volume", tiers=(TierSpec(None, D(1)),), per=D(1000)),
            ),
            {"charges.0.pricing.per": ["A volume price has no 'Per' here: put it on each tier"]},
        ),
    ],
)
def test_per_rules(charge, fields):
    assert version_errors(charge) == fields


@pytest.mark.parametrize(
    ("terms", "fields"),
    [
        (
            {"currency": "XYZ"},
            {"currency": ["Unknown currency 'XYZ': use a three-letter code such as USD"]},
        ),
        (
            {"currency": "XXX"},
            {"currency": ["Unknown currency 'XXX': use a three-letter code such as USD"]},
        ),
        ({"interval": "week"}, {"interval": ["Pick a billing interval: month, quarter or year"]}),
        ({"base_fee": D("1.999")}, {"base_fee": ["USD amounts have at most 2 decimal places"]}),
        (
            {"currency": "JPY", "base_fee": D("100.5")},
            {"base_fee": ["JPY amounts are whole numbers"]},
        ),
        ({"base_fee": None}, {"base_fee": ["This field is required"]}),
        ({"seat_price": D(-1)}, {"seat_price": ["Cannot be negative"]}),
        (
            {"minimum_commitment": D("0.001")},
            {"minimum_commitment": ["USD amounts have at most 2 decimal places"]},
        ),
        ({"credits_per_period": D("NaN")}, {"credits_per_period": ["Enter a finite number"]}),
        ({"trial_days": -1}, {"trial_days": ["Enter 0 to 3650 days"]}),
        ({"trial_days": True}, {"trial_days": ["Enter a whole number of days"]}),
        ({"trial_days": D(3)}, {"trial_days": ["Enter a whole number of days"]}),
    ],
)
def test_version_term_rules(terms, fields):
    assert version_errors(**terms) == fields


def test_jpy_base_fee_in_whole_yen_is_valid():
    validate_version(VersionSpec(currency="JPY", base_fee=D(100)), known_meters=())


def test_every_problem_is_reported_at_once():
    fields = version_errors(
        ChargeSpec("nope", "overage"),
        ChargeSpec("sms", "hard_cap", pricing=PER_UNIT),
        currency="XYZ",
        interval="day",
    )

    assert set(fields) == {
        "currency",
        "interval",
        "charges.0.meter",
        "charges.0.pricing",
        "charges.1.pricing",
        "charges.1.included_units",
    }


# validate_meter


def test_valid_meters_raise_nothing():
    base = {
        "code": "m",
        "name": "M",
        "event_name": "e",
        "value_property": "",
        "unique_property": "",
    }
    validate_meter(**base, aggregation="count", filters={"model": ["gpt-4o", 4, True]})
    validate_meter(**base | {"value_property": "tokens"}, aggregation="sum", filters={})
    validate_meter(**base | {"unique_property": "user"}, aggregation="unique_count", filters={})


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        (
            {"aggregation": "sum"},
            {"value_property": ["A sum of a property needs the property to read"]},
        ),
        (
            {"aggregation": "max"},
            {"value_property": ["A maximum of a property needs the property to read"]},
        ),
        (
            {"aggregation": "latest"},
            {"value_property": ["The latest value of a property needs the property to read"]},
        ),
        (
            {"aggregation": "unique_count"},
            {
                "unique_property": [
                    "A count of distinct values needs the property whose values to count"
                ]
            },
        ),
        (
            {"value_property": "tokens"},
            {"value_property": ["A count of events reads no value property: leave it empty"]},
        ),
        (
            {"aggregation": "sum", "value_property": "t", "unique_property": "u"},
            {
                "unique_property": [
                    "Only a count of distinct values reads this property: leave it empty"
                ]
            },
        ),
        (
            {"aggregation": "avg"},
            {"aggregation": ["Pick an aggregation: count, sum, max, unique_count or latest"]},
        ),
        (
            {"filters": []},
            {
                "filters": [
                    'must be an object of property -> list of values, e.g. {"model": ["gpt-4o"]}'
                ]
            },
        ),
        (
            {"filters": {"model": "gpt-4o"}},
            {"filters.model": ["must be a non-empty list of values"]},
        ),
        ({"filters": {"model": []}}, {"filters.model": ["must be a non-empty list of values"]}),
        (
            {"filters": {"model": [None]}},
            {"filters.model": ["values must be strings, numbers or booleans"]},
        ),
        (
            {"filters": {f"p{i}": ["x"] for i in range(51)}},
            {"filters": ["at most 50 properties"]},
        ),
        ({"filters": {"model": list(range(51))}}, {"filters.model": ["at most 50 values"]}),
        (
            {"code": "has space"},
            {
                "code": [
                    "Use 1 to 64 letters, digits, '_', '.', ':' or '-', "
                    "starting with a letter or digit"
                ]
            },
        ),
        ({"name": " "}, {"name": ["Give the meter a name"]}),
        ({"event_name": ""}, {"event_name": ["Enter the name of the events the meter counts"]}),
    ],
)
def test_meter_rules(fields, errors):
    assert meter_errors(**fields) == errors


# validate_credit_pack and validate_customer


def test_credit_pack_rules():
    with pytest.raises(InvalidRequest) as refused:
        validate_credit_pack(code="runs 100", credits=D(0), price=D("99.5"), currency="JPY")

    assert refused.value.fields == {
        "code": [
            "Use 1 to 64 letters, digits, '_', '.', ':' or '-', starting with a letter or digit"
        ],
        "credits": ["Must be more than zero"],
        "price": ["JPY amounts are whole numbers"],
    }


def test_valid_credit_pack_raises_nothing():
    validate_credit_pack(code="runs_100", credits=D(100), price=D("99.00"), currency="USD")


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        (
            {"external_id": "acme inc"},
            {
                "external_id": [
                    "must be 1-255 characters without spaces, '/', '?', '#', '%' or '\\'"
                ]
            },
        ),
        (
            {"external_id": "a/b"},
            {
                "external_id": [
                    "must be 1-255 characters without spaces, '/', '?', '#', '%' or '\\'"
                ]
            },
        ),
        (
            {"timezone": "Mars/Base"},
            {
                "timezone": [
                    "unknown time zone 'Mars/Base'; use an IANA name such as 'Europe/Paris'"
                ]
            },
        ),
        (
            {"spend_limit": D("1.001")},
            {"spend_limit": ["USD amounts have at most 2 decimal places"]},
        ),
        ({"spend_limit": D(-1)}, {"spend_limit": ["Cannot be negative"]}),
        (
            {"address": "1 Main St"},
            {
                "address": [
                    "must be an object with the keys "
                    "line1, line2, city, state, postal_code, country"
                ]
            },
        ),
        (
            {"address": {"street": "1 Main St", "country": "XX", "city": 7}},
            {
                "address.street": [
                    "unknown key; an address has line1, line2, city, state, postal_code, country"
                ],
                "address.city": ["must be a string or null"],
                "address.country": ["unknown country 'XX'; use an ISO 3166-1 code such as 'FR'"],
            },
        ),
    ],
)
def test_customer_rules(fields, errors):
    values = {
        "external_id": "acme",
        "currency": "USD",
        "timezone": "UTC",
        "spend_limit": None,
        "address": {},
    } | fields
    with pytest.raises(InvalidRequest) as refused:
        validate_customer(**values)

    assert refused.value.fields == errors


def test_a_drawn_charge_on_a_maximum_meter_names_the_code_for_the_api_not_the_admin():
    spec = VersionSpec(
        currency="USD", charges=(ChargeSpec("seats", "credits", credits_per_unit=D(1)),)
    )
    with pytest.raises(InvalidRequest) as refused:
        validate_version(spec, known_meters={"seats": "max"})
    api = (
        "A credits charge draws from a wallet event by event: its meter must count events or "
        "sum a property, and 'seats' takes a maximum of a property"
    )
    assert refused.value.fields == {"charges.0.model": [api]}
    assert refused.value.admin_fields == {
        "charges.0.model": [
            "A credits charge draws from a wallet event by event: its meter must count events "
            "or sum a property, and this one takes a maximum of a property: pick such a meter, "
            "or a soft or hard cap."
        ]
    }
    # a message without words of its own reads the same for both
    assert version_errors(ChargeSpec("prompts", "overage", D(10))) == {
        "charges.0.pricing": ["A soft cap charge needs a price: pick a pricing scheme"]
    }
