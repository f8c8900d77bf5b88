"""The estimating app: a construction cost-estimating library run on nightcrew.

Popularity and suggestions, price snapshots and trends, cost calculations and bulk
updates, each a nightcrew job type. ``estimating.app.install(app)`` adds it to any nightcrew
App (see :mod:`estimating.app` and docs/estimating.md).
"""

__all__: list[str] = []
