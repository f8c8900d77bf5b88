-- Personal bests, longest unbeaten run first.
SELECT coalesce(json_agg(t), '[]')::text FROM (
    SELECT b.player_id, p.name, b.most_goals_in_match, b.most_assists_in_match,
           b.longest_win_streak, b.longest_unbeaten_streak
    FROM league.personal_bests b JOIN league.players p ON p.id = b.player_id
    ORDER BY b.longest_unbeaten_streak DESC, b.player_id
) t
