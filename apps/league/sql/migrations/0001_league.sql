-- The league: players, seasons, matches and each player's appearance in a match.
-- Matches are small-sided games between two picked teams (A and B); a player's result and
-- clean sheet follow from the goals of the two teams.

CREATE TABLE league.players (
    id      integer PRIMARY KEY,
    name    text NOT NULL UNIQUE CHECK (name <> '')
);

CREATE TABLE league.seasons (
    id          integer PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    starts_on   date NOT NULL,
    weeks       integer NOT NULL CHECK (weeks > 0)
);

CREATE TABLE league.matches (
    id          integer PRIMARY KEY,
    season_id   integer NOT NULL REFERENCES league.seasons (id),
    week        integer NOT NULL CHECK (week > 0),
    played_on   date NOT NULL,
    status      text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'completed')),
    goals_a     integer CHECK (goals_a >= 0),
    goals_b     integer CHECK (goals_b >= 0),
    UNIQUE (season_id, week),
    CHECK ((status = 'completed') = (goals_a IS NOT NULL AND goals_b IS NOT NULL))
);

CREATE TABLE league.appearances (
    match_id    integer NOT NULL REFERENCES league.matches (id) ON DELETE CASCADE,
    player_id   integer NOT NULL REFERENCES league.players (id),
    team        text NOT NULL CHECK (team IN ('A', 'B')),
    goals       integer NOT NULL DEFAULT 0 CHECK (goals >= 0),
    assists     integer NOT NULL DEFAULT 0 CHECK (assists >= 0),
    clean_sheet boolean NOT NULL,
    result      text NOT NULL CHECK (result IN ('W', 'D', 'L')),
    PRIMARY KEY (match_id, player_id)
);
CREATE INDEX appearances_player ON league.appearances (player_id);

-- A completed match has players on both teams. Checked at commit (deferred), so a result
-- is written row by row and refused as a whole.
CREATE FUNCTION league.check_match_teams() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(DISTINCT team) FROM league.appearances WHERE match_id = NEW.match_id) < 2 THEN
        RAISE EXCEPTION 'match % needs players on both teams', NEW.match_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'match_has_two_teams';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER match_has_two_teams
    AFTER INSERT OR UPDATE ON league.appearances
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION league.check_match_teams();
