-- Form over the last five games, best points first.
SELECT coalesce(json_agg(t), '[]')::text FROM (
    SELECT r.player_id, p.name, r.games, r.goals, r.assists, r.points, r.form
    FROM league.recent_performance r JOIN league.players p ON p.id = r.player_id
    ORDER BY r.points DESC, r.goals DESC, r.player_id
) t
