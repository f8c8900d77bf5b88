-- Player profiles, by player.
SELECT coalesce(json_agg(t), '[]')::text FROM (
    SELECT f.player_id, p.name, f.first_match, f.last_match, f.seasons_played, f.games,
           f.goals, f.assists, f.goals_per_game, f.win_pct
    FROM league.player_profiles f JOIN league.players p ON p.id = f.player_id
    ORDER BY f.player_id
) t
