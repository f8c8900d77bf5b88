DELETE FROM league.appearances WHERE match_id = %(match_id)s
