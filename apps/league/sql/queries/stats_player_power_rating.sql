-- Power ratings (EWMA of match performance), best first.
SELECT coalesce(json_agg(t), '[]')::text FROM (
    SELECT r.player_id, p.name, r.rating, r.games
    FROM league.power_ratings r JOIN league.players p ON p.id = r.player_id
    ORDER BY r.rating DESC, r.player_id
) t
