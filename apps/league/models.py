"""Request bodies of ``/api/league`` (camelCase on the wire, like the seed's API)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_PLAYERS_PER_MATCH = 30


class StatsJobRequest(BaseModel):
    """``POST /api/league/stats-jobs``: ask for a statistics refresh."""

    model_config = ConfigDict(extra="forbid")

    triggeredBy: Literal["post-match", "admin", "cron"]
    requestId: str = Field(min_length=1, max_length=200)
    matchId: int | None = Field(default=None, ge=1)
    retryOf: UUID | None = None

    @model_validator(mode="after")
    def _consistent(self) -> StatsJobRequest:
        if self.triggeredBy == "post-match" and self.matchId is None:
            raise ValueError("matchId: a post-match refresh names its match")
        if self.retryOf is not None and self.triggeredBy != "admin":
            raise ValueError("retryOf: only an admin refresh retries a run")
        return self


class Appearance(BaseModel):
    """One player's part in a match result."""

    model_config = ConfigDict(extra="forbid")

    playerId: int = Field(ge=1)
    team: Literal["A", "B"]
    goals: int = Field(default=0, ge=0, le=50)
    assists: int = Field(default=0, ge=0, le=50)


class MatchResultRequest(BaseModel):
    """``POST /api/league/matches/{id}/result``: who played for which team, and scored."""

    model_config = ConfigDict(extra="forbid")

    appearances: list[Appearance] = Field(min_length=2, max_length=MAX_PLAYERS_PER_MATCH)
    requestId: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _each_player_once(self) -> MatchResultRequest:
        seen: set[int] = set()
        for appearance in self.appearances:
            if appearance.playerId in seen:
                raise ValueError(f"appearances: player {appearance.playerId} appears twice")
            seen.add(appearance.playerId)
        return self


class InvalidateRequest(BaseModel):
    """``POST /api/league/internal/cache/invalidate``: the tags to drop."""

    model_config = ConfigDict(extra="forbid")

    tags: list[str] = Field(min_length=1, max_length=50)
