-- Fold closed minutes of the rollup into hours and totals (no-op when there are none).
SELECT nightcrew.stats_compact()
