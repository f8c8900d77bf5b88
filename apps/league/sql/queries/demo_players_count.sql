SELECT count(*) FROM league.players
