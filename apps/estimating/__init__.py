"""The estimating app: a construction cost-estimating library run on nightcrew.

Popularity and suggestions, price snapshots and trends, cost calculations and bulk
updates, each a nightcrew job type (see :mod:`estimating.app` and docs/estimating.md).
"""

__all__: list[str] = []
