"""The documented confidence score and the settings (no database, no network)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from prospecting.pipeline import domain_of, usable_website
from prospecting.scoring import QUALIFY_AT, Signals, base_score, confidence, qualifies
from prospecting.settings import SettingsError, load_settings, parse_prices, parse_rate


def test_each_signal_scores_as_documented() -> None:
    assert base_score(Signals()) == 0
    assert base_score(Signals(website="https://a.example")) == 20
    assert base_score(Signals(phone="+1 555 0100")) == 10
    assert base_score(Signals(rating=5.0)) == 15
    assert base_score(Signals(rating=4.0)) == 12
    assert base_score(Signals(reviews=999)) == 15  # log10(1000) / 3 = 1
    assert base_score(Signals(reviews=9)) == 5  # log10(10) / 3 of 15
    assert base_score(Signals(reviews=0)) == 0


def test_the_full_score_adds_the_email_points_and_tops_at_100() -> None:
    everything = Signals("https://a.example", "+1 555 0100", 5.0, 5000, True, True)
    assert confidence(everything) == 100
    assert confidence(Signals(website="w", email_found=True)) == 40
    assert confidence(Signals(website="w", email_found=True, email_verified=True)) == 60
    # A verdict without an email found counts for nothing.
    assert confidence(Signals(website="w", email_verified=True)) == 20


def test_out_of_range_signals_are_clamped() -> None:
    assert base_score(Signals(rating=9.0)) == 15
    assert base_score(Signals(rating=-1.0)) == 0
    assert base_score(Signals(reviews=-5)) == 0


def test_a_lead_qualifies_at_the_threshold_with_a_website() -> None:
    at_threshold = Signals(website="w", phone="p", rating=5 * (QUALIFY_AT - 30) / 15)
    assert base_score(at_threshold) == QUALIFY_AT
    assert qualifies(at_threshold)
    assert not qualifies(Signals(website="w", phone="p"))  # 30 < 35
    assert not qualifies(Signals(phone="p", rating=5.0, reviews=5000))  # 40 but no website


def test_rates_and_prices_are_parsed_and_bad_ones_named() -> None:
    assert parse_rate("R", "5/s") == 5
    assert parse_rate("R", "120/m") == 2
    assert parse_rate("R", " 3600 / h ") == 1
    for bad in ("5", "0/s", "five/s", "5/d", "-1/s"):
        with pytest.raises(SettingsError, match="R: expected a rate"):
            parse_rate("R", bad)
    assert parse_prices('{"finder": 0.2}')["finder"] == Decimal("0.2")
    for bad, message in (("[", "not valid JSON"), ("[1]", "JSON object"),
                         ('{"maps": 1}', "unknown provider 'maps'"),
                         ('{"places": -1}', "places: must be >= 0"),
                         ('{"places": "x"}', "places: not a number")):  # fmt: skip
        with pytest.raises(SettingsError, match=message):
            parse_prices(bad)


def test_settings_come_from_the_environment() -> None:
    settings = load_settings({
        "PROSPECTING_PLACES_URL": "https://places.example/v1/", "PROSPECTING_PLACES_KEY": "k1",
        "PROSPECTING_FINDER_RATE": "10/s", "PROSPECTING_PRICES": '{"verifier": 0.01}',
    })  # fmt: skip
    assert settings["places"].url == "https://places.example/v1"
    assert settings["places"].key == "k1"
    assert settings["finder"].per_second == 10 and settings["finder"].rate == "10/s"
    assert settings["places"].rate == "5/s"
    assert settings["verifier"].price == Decimal("0.01")
    with pytest.raises(SettingsError, match="PROSPECTING_VERIFIER_RATE"):
        load_settings({"PROSPECTING_VERIFIER_RATE": "fast"})


@pytest.mark.parametrize(
    ("website", "domain", "usable"),
    [
        ("https://www.cafe.example/menu", "cafe.example", True),
        ("http://cafe.example", "cafe.example", True),
        ("cafe.example", "cafe.example", False),  # a host name, not a link
        ("javascript:alert(document.domain)", None, False),
        ("http:///", None, False),
        ("ftp://cafe.example", None, False),
        ("https://localhost", None, False),
        ("http://[::1", None, False),
        (None, None, False),
    ],
)
def test_websites_from_providers_are_checked(
    website: str | None, domain: str | None, usable: bool
) -> None:
    assert domain_of(website) == domain
    assert (usable_website(website) is not None) is usable
