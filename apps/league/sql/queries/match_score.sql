SELECT goals_a, goals_b FROM league.matches WHERE id = %(id)s
