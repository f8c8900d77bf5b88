-- Store a match result from its appearances: each team's goals, then every player's
-- result and clean sheet from them.
WITH given AS (
    SELECT * FROM unnest(%(players)s::integer[], %(teams)s::text[], %(goals)s::integer[],
                         %(assists)s::integer[]) AS g (player_id, team, goals, assists)
),
score AS (
    SELECT coalesce(sum(goals) FILTER (WHERE team = 'A'), 0) AS a,
           coalesce(sum(goals) FILTER (WHERE team = 'B'), 0) AS b
    FROM given
),
match AS (
    UPDATE league.matches SET status = 'completed', goals_a = score.a, goals_b = score.b
    FROM score WHERE id = %(match_id)s
    RETURNING goals_a, goals_b
)
INSERT INTO league.appearances (match_id, player_id, team, goals, assists, clean_sheet, result)
SELECT %(match_id)s, g.player_id, g.team, g.goals, g.assists,
       CASE g.team WHEN 'A' THEN m.goals_b = 0 ELSE m.goals_a = 0 END,
       CASE WHEN m.goals_a = m.goals_b THEN 'D'
            WHEN (g.team = 'A') = (m.goals_a > m.goals_b) THEN 'W' ELSE 'L' END
FROM given g CROSS JOIN match m
RETURNING result
