-- Cumulative points by week (?season=N: that season only).
SELECT coalesce(json_agg(t), '[]')::text FROM (
    SELECT r.season_id, r.week, r.player_id, p.name, r.points
    FROM league.season_race r JOIN league.players p ON p.id = r.player_id
    WHERE %(season)s::integer IS NULL OR r.season_id = %(season)s
    ORDER BY r.season_id, r.week, r.player_id
) t
