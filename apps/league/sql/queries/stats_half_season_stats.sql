-- Half-season statistics (?season=N: that season only).
SELECT coalesce(json_agg(t), '[]')::text FROM (
    SELECT s.season_id, s.half, s.player_id, p.name, s.games, s.wins, s.draws, s.losses,
           s.goals, s.assists, s.clean_sheets, s.points
    FROM league.half_season_stats s JOIN league.players p ON p.id = s.player_id
    WHERE %(season)s::integer IS NULL OR s.season_id = %(season)s
    ORDER BY s.season_id, s.half, s.points DESC, s.goals DESC, s.player_id
) t
