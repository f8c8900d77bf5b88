-- Snapshot history is kept for retention_days (at least six months).
WITH a AS (
    DELETE FROM estimating.catalogue_price_snapshots WHERE snapshot_date < %(cutoff)s
), b AS (
    DELETE FROM estimating.item_price_snapshots WHERE snapshot_date < %(cutoff)s
), c AS (
    DELETE FROM estimating.project_cost_snapshots WHERE snapshot_date < %(cutoff)s
)
DELETE FROM estimating.project_price_snapshots WHERE snapshot_date < %(cutoff)s
