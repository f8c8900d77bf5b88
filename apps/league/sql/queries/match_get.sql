SELECT id, season_id, week, played_on, status FROM league.matches WHERE id = %(id)s FOR UPDATE
