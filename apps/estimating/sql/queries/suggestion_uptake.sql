-- Suggestions offered in the 30 days before now, and how many of them the estimates used
-- (row-level security: over the projects the reader may see).
SELECT count(*) AS offered, count(used_at) AS used
FROM estimating.suggestion_offers
WHERE offered_at > %(now)s::timestamptz - interval '30 days' AND offered_at <= %(now)s
