-- All-time statistics, best points first.
SELECT coalesce(json_agg(t), '[]')::text FROM (
    SELECT s.player_id, p.name, s.games, s.wins, s.draws, s.losses, s.goals, s.assists,
           s.clean_sheets, s.points, s.points_per_game
    FROM league.all_time_stats s JOIN league.players p ON p.id = s.player_id
    ORDER BY s.points DESC, s.goals DESC, s.player_id
) t
