"""The confidence score of a lead, 0-100, from the business's signals (docs/prospecting.md):

=========================  ======================================================
website                    20 (needed to look for an email: no website, no lead)
phone                      10
rating                     up to 15: ``15 * rating / 5``
review count               up to 15: ``15 * min(log10(1 + reviews) / 3, 1)``
                           (1000 reviews or more score full marks)
email found                20
email verified             20 (the verifier said ``valid``)
=========================  ======================================================

Before enrichment only the first four count (the *base* score, at most 60); a business
*qualifies* as a lead when its base score is at least :data:`QUALIFY_AT` and it has a
website. Enrichment adds the email points; the lead's confidence is the full score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

QUALIFY_AT = 35.0
"""Base score at or above which a business with a website becomes a lead."""

WEBSITE_POINTS = 20.0
PHONE_POINTS = 10.0
RATING_POINTS = 15.0
REVIEW_POINTS = 15.0
EMAIL_FOUND_POINTS = 20.0
EMAIL_VERIFIED_POINTS = 20.0


@dataclass(frozen=True)
class Signals:
    """What is known about a business."""

    website: str | None = None
    phone: str | None = None
    rating: float | None = None
    reviews: int | None = None
    email_found: bool = False
    email_verified: bool = False


def base_score(signals: Signals) -> float:
    """The score from the business's own signals (website, phone, rating, reviews)."""
    score = 0.0
    if signals.website:
        score += WEBSITE_POINTS
    if signals.phone:
        score += PHONE_POINTS
    if signals.rating is not None:
        score += RATING_POINTS * min(max(signals.rating, 0.0), 5.0) / 5.0
    if signals.reviews:
        score += REVIEW_POINTS * min(math.log10(1 + max(signals.reviews, 0)) / 3.0, 1.0)
    return round(score, 2)


def confidence(signals: Signals) -> float:
    """The full confidence score: the base score plus the email points."""
    score = base_score(signals)
    if signals.email_found:
        score += EMAIL_FOUND_POINTS
        if signals.email_verified:
            score += EMAIL_VERIFIED_POINTS
    return round(score, 2)


def qualifies(signals: Signals) -> bool:
    """Whether the business becomes a lead (worth paying to enrich)."""
    return bool(signals.website) and base_score(signals) >= QUALIFY_AT
