-- Match reports, newest first (?season=N: that season only).
SELECT coalesce(json_agg(t), '[]')::text FROM (
    SELECT r.match_id, r.season_id, r.week, r.played_on, r.goals_a, r.goals_b, r.scorers,
           r.player_of_match, p.name AS player_of_match_name
    FROM league.match_reports r JOIN league.players p ON p.id = r.player_of_match
    WHERE %(season)s::integer IS NULL OR r.season_id = %(season)s
    ORDER BY r.played_on DESC, r.match_id DESC
) t
