-- Fold the rollup's minutes older than the last hour into hours and totals (no-op when
-- there are none; the last hour stays per minute for the health alerts).
SELECT nightcrew.stats_compact()
