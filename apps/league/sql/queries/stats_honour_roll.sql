-- Season honours (?season=N: that season only).
SELECT coalesce(json_agg(t), '[]')::text FROM (
    SELECT h.season_id, h.honour, h.player_id, p.name, h.value
    FROM league.honour_roll h JOIN league.players p ON p.id = h.player_id
    WHERE %(season)s::integer IS NULL OR h.season_id = %(season)s
    ORDER BY h.season_id, h.honour, h.player_id
) t
