"""Request bodies of the estimating API and job payloads (validated by Pydantic: negative or
non-numeric quantities and rates are refused with a 422 naming the field)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

Code = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")]
Rate = Annotated[Decimal, Field(ge=0, le=Decimal("1e10"), allow_inf_nan=False, decimal_places=4)]
Amount = Annotated[Decimal, Field(ge=0, le=Decimal("1e10"), allow_inf_nan=False)]
Positive = Annotated[Decimal, Field(gt=0, le=Decimal("1e6"), allow_inf_nan=False)]
Percent = Annotated[Decimal, Field(ge=0, le=1000, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, max_length=300)]
ClientId = Annotated[str, Field(min_length=1, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CatalogueRow(_Strict):
    """One material, labour or equipment entry with its catalogue rate (per ``unit``)."""

    code: Code
    name: Name
    unit: Annotated[str, Field(min_length=1, max_length=40)]
    rate: Rate


class CatalogueRequest(_Strict):
    """``POST /api/estimating/catalogue``: entries to create, or update when the code exists."""

    materials: list[CatalogueRow] = []
    labour: list[CatalogueRow] = []
    equipment: list[CatalogueRow] = []


class MaterialFactor(_Strict):
    """Material per unit of the item: ``rate * quantity_per_unit * (1 + wastage/100)``."""

    code: Code
    quantity_per_unit: Amount
    wastage_percentage: Percent = Decimal(0)


class LabourFactor(_Strict):
    """Labour per unit of the item: ``rate * hours_per_unit / productivity_factor * crew_size``."""

    code: Code
    hours_per_unit: Amount
    productivity_factor: Positive = Decimal(1)
    crew_size: Positive = Decimal(1)


class EquipmentFactor(_Strict):
    """Equipment per unit of the item: ``rate * hours_per_unit * utilization_factor``."""

    code: Code
    hours_per_unit: Amount
    utilization_factor: Amount = Decimal(1)


class ItemRequest(_Strict):
    """``POST /api/estimating/items``: a library item with its factors (by catalogue code)."""

    code: Code
    name: Name
    unit: Annotated[str, Field(min_length=1, max_length=40)]
    category: Annotated[str, Field(min_length=1, max_length=100)] = "general"
    materials: list[MaterialFactor] = []
    labour: list[LabourFactor] = []
    equipment: list[EquipmentFactor] = []


class ProjectRequest(_Strict):
    """``POST /api/estimating/projects``: the id is the client's own."""

    id: ClientId
    name: Name
    active: bool | None = None
    """Inactive projects are left out of the daily snapshot; new projects are active."""


class MemberRequest(_Strict):
    """``POST /api/estimating/projects/{id}/members``: owners add members (or change a role).

    ``owner``: everything, members included; ``editor``: rates, usage, renaming;
    ``viewer``: reads the project and runs calculations on it.
    """

    user_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{1,100}$")]
    role: Literal["owner", "editor", "viewer"]


class ProjectRate(_Strict):
    """A project's rate for a catalogue entry, in force from ``effective_from``."""

    code: Code
    rate: Rate
    effective_from: date


class ProjectRatesRequest(_Strict):
    """``POST /api/estimating/projects/{id}/rates``."""

    rates: Annotated[list[ProjectRate], Field(min_length=1, max_length=10_000)]


class UsageRequest(_Strict):
    """``POST /api/estimating/usage``: an item used in an estimate (created on first use)."""

    item_code: Code
    project_id: ClientId
    estimate_id: ClientId
    quantity: Amount
    used_at: AwareDatetime | None = None
    suggested: bool = False
    """The item was added because it was suggested for this estimate."""
    suggestion_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    """The id of the suggestion taken up (from ``GET /suggestions`` with the estimate)."""


class CalculationLine(_Strict):
    """An item of a cost calculation and its quantity (in the item's unit)."""

    code: Code
    quantity: Amount = Decimal(1)


COST_OPTIONS = ("indirect", "overhead", "contingency")
"""The optional costs of a calculation, each added on top of the ones before it."""
DEFAULT_PCT = {"indirect": Decimal(15), "overhead": Decimal(10), "contingency": Decimal(5)}
"""The seed's percentages, used when a cost is included without its percentage."""


class CalculationRequest(_Strict):
    """``POST /api/estimating/calculations`` (and the ``estimating.calculate_costs`` payload).

    As in the seed, only the direct cost is counted by default: ``include_indirect``,
    ``include_overhead`` and ``include_contingency`` (default false) add indirect (% of
    direct), overhead (% of direct + indirect) and contingency (% of direct + indirect +
    overhead) at ``*_pct`` (default 15 / 10 / 5). A percentage sent means that cost is
    included (callers written before the flags keep working); sending a percentage with its
    flag false is a contradiction, refused.
    """

    project_id: ClientId
    items: Annotated[list[CalculationLine], Field(min_length=1, max_length=10_000)]
    include_indirect: bool | None = None
    include_overhead: bool | None = None
    include_contingency: bool | None = None
    indirect_pct: Percent | None = None
    overhead_pct: Percent | None = None
    contingency_pct: Percent | None = None
    as_of: date | None = None

    @model_validator(mode="after")
    def _no_contradiction(self) -> CalculationRequest:
        for name in COST_OPTIONS:
            if getattr(self, f"include_{name}") is False and getattr(self, f"{name}_pct"):
                raise ValueError(
                    f"{name}_pct is given but include_{name} is false: drop one of them"
                )
        return self

    def included(self, name: str) -> bool:
        """Whether the cost ``name`` (indirect, overhead, contingency) is counted."""
        flag = getattr(self, f"include_{name}")
        return bool(flag) if flag is not None else getattr(self, f"{name}_pct") is not None

    def percent(self, name: str) -> Decimal:
        """The percentage of the cost ``name``: the one sent, else the seed's default."""
        given: Decimal | None = getattr(self, f"{name}_pct")
        return DEFAULT_PCT[name] if given is None else given


class BulkPriceUpdateRequest(_Strict):
    """``POST /api/estimating/bulk-price-update``: raise catalogue rates by ``percent``.

    Select entries by ``catalogue_codes``, by ``item_codes`` (every entry those items use,
    each once), or by ``filter`` (``kind`` and/or ``category`` of the items using them).
    """

    item_codes: list[Code] | None = None
    catalogue_codes: list[Code] | None = None
    filter: BulkFilter | None = None
    percent: Annotated[Decimal, Field(gt=-100, le=1000, allow_inf_nan=False)]
    notify_email: str | None = None

    @model_validator(mode="after")
    def _one_selection(self) -> BulkPriceUpdateRequest:
        given = [x for x in (self.item_codes, self.catalogue_codes, self.filter) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of item_codes, catalogue_codes or filter")
        return self


class BulkFilter(_Strict):
    """Select catalogue entries by kind and/or by the category of the items using them."""

    kind: Literal["material", "labour", "equipment"] | None = None
    category: str | None = None


class BulkAssemblyUpdateRequest(_Strict):
    """``POST /api/estimating/bulk-assembly-update``: in an assembly and all its descendant
    assemblies, replace item ``replace`` by item ``with_item`` (quantities kept)."""

    assembly_code: Code
    replace: Code
    with_item: Code
    notify_email: str | None = None


class AssemblyRequest(_Strict):
    """``POST /api/estimating/assemblies``: an assembly, its parent and its items."""

    code: Code
    name: Name
    parent_code: Code | None = None
    items: list[CalculationLine] = []


BulkPriceUpdateRequest.model_rebuild()
