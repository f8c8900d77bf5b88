-- The hall of fame: top 3 of each category.
SELECT coalesce(json_agg(t), '[]')::text FROM (
    SELECT h.category, h.rank, h.player_id, p.name, h.value
    FROM league.hall_of_fame h JOIN league.players p ON p.id = h.player_id
    ORDER BY h.category, h.rank, h.player_id
) t
