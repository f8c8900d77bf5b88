-- What a campaign has paid so far.
SELECT coalesce(sum(cost), 0) FROM prospecting.calls WHERE campaign_id = %(id)s
