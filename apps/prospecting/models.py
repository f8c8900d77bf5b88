"""The campaign request (the API's body and the dashboard form's fields)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_RESULTS = 100
"""Businesses one campaign may look for at most (the place search's five pages)."""


class CampaignRequest(BaseModel):
    """``{"businessType", "location", "maxResults", "budget"?}``; budget in dollars."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    business_type: str = Field(alias="businessType", min_length=1, max_length=100)
    location: str = Field(min_length=1, max_length=200)
    max_results: int = Field(alias="maxResults", ge=1, le=MAX_RESULTS)
    budget: Decimal | None = Field(default=None, ge=0, le=100_000, max_digits=12,
                                   decimal_places=4)  # fmt: skip

    @field_validator("business_type", "location")
    @classmethod
    def not_blank(cls, value: str) -> str:
        """Strip the text; blank is refused."""
        stripped = value.strip()
        if not stripped:
            raise ValueError("must not be blank")
        return stripped
