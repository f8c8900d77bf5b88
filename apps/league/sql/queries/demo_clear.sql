-- Empty the league before loading the demo league (runs and their statistics too).
TRUNCATE league.appearances, league.matches, league.seasons, league.players, league.runs CASCADE
