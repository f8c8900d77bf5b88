-- The ten statistics functions and the tables they refresh.
--
-- Each function reads only the base tables (players, seasons, matches, appearances), never
-- another function's output, so the ten can run in parallel in any order. Each replaces
-- its table(s) whole in one set-based statement pair (idempotent: running it twice gives
-- the same rows) under its own transaction-scoped advisory lock, so two concurrent calls
-- of one function queue instead of inserting duplicates. Each returns the rows written.
--
-- Points: win 3, draw 1, loss 0.

-- Completed appearances with their match's season, week and date.
CREATE VIEW league.played AS
SELECT a.match_id, a.player_id, a.team, a.goals, a.assists, a.clean_sheet, a.result,
       m.season_id, m.week, m.played_on,
       CASE a.result WHEN 'W' THEN 3 WHEN 'D' THEN 1 ELSE 0 END AS points
FROM league.appearances a
JOIN league.matches m ON m.id = a.match_id AND m.status = 'completed';

-- 1. update_half_and_full_season_stats (tags season_stats, half_season_stats) -----------
CREATE TABLE league.season_stats (
    season_id    integer NOT NULL,
    player_id    integer NOT NULL,
    games        integer NOT NULL,
    wins         integer NOT NULL,
    draws        integer NOT NULL,
    losses       integer NOT NULL,
    goals        integer NOT NULL,
    assists      integer NOT NULL,
    clean_sheets integer NOT NULL,
    points       integer NOT NULL,
    PRIMARY KEY (season_id, player_id)
);

-- Half 1: weeks 1 .. weeks/2 of the season; half 2: the rest.
CREATE TABLE league.half_season_stats (
    season_id    integer NOT NULL,
    half         integer NOT NULL CHECK (half IN (1, 2)),
    player_id    integer NOT NULL,
    games        integer NOT NULL,
    wins         integer NOT NULL,
    draws        integer NOT NULL,
    losses       integer NOT NULL,
    goals        integer NOT NULL,
    assists      integer NOT NULL,
    clean_sheets integer NOT NULL,
    points       integer NOT NULL,
    PRIMARY KEY (season_id, half, player_id)
);

CREATE FUNCTION league.update_half_and_full_season_stats() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    full_rows integer;
    half_rows integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_half_and_full_season_stats'));
    DELETE FROM league.season_stats;
    INSERT INTO league.season_stats
    SELECT season_id, player_id, count(*), count(*) FILTER (WHERE result = 'W'),
           count(*) FILTER (WHERE result = 'D'), count(*) FILTER (WHERE result = 'L'),
           sum(goals), sum(assists), count(*) FILTER (WHERE clean_sheet), sum(points)
    FROM league.played
    GROUP BY season_id, player_id;
    GET DIAGNOSTICS full_rows = ROW_COUNT;
    DELETE FROM league.half_season_stats;
    INSERT INTO league.half_season_stats
    SELECT p.season_id, CASE WHEN p.week * 2 <= s.weeks THEN 1 ELSE 2 END AS half, p.player_id,
           count(*), count(*) FILTER (WHERE result = 'W'), count(*) FILTER (WHERE result = 'D'),
           count(*) FILTER (WHERE result = 'L'), sum(goals), sum(assists),
           count(*) FILTER (WHERE clean_sheet), sum(points)
    FROM league.played p
    JOIN league.seasons s ON s.id = p.season_id
    GROUP BY p.season_id, half, p.player_id;
    GET DIAGNOSTICS half_rows = ROW_COUNT;
    RETURN full_rows + half_rows;
END
$$;

-- 2. update_aggregated_all_time_stats (tag all_time_stats) ------------------------------
CREATE TABLE league.all_time_stats (
    player_id       integer PRIMARY KEY,
    games           integer NOT NULL,
    wins            integer NOT NULL,
    draws           integer NOT NULL,
    losses          integer NOT NULL,
    goals           integer NOT NULL,
    assists         integer NOT NULL,
    clean_sheets    integer NOT NULL,
    points          integer NOT NULL,
    points_per_game numeric(6, 3) NOT NULL
);

CREATE FUNCTION league.update_aggregated_all_time_stats() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    written integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_all_time_stats'));
    DELETE FROM league.all_time_stats;
    INSERT INTO league.all_time_stats
    SELECT player_id, count(*), count(*) FILTER (WHERE result = 'W'),
           count(*) FILTER (WHERE result = 'D'), count(*) FILTER (WHERE result = 'L'),
           sum(goals), sum(assists), count(*) FILTER (WHERE clean_sheet), sum(points),
           round(sum(points)::numeric / count(*), 3)
    FROM league.played
    GROUP BY player_id;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;

-- 3. update_aggregated_hall_of_fame (tag hall_of_fame) ----------------------------------
-- The all-time top 3 (ties share a rank, so a category may list more) of five categories.
CREATE TABLE league.hall_of_fame (
    category    text NOT NULL,
    rank        integer NOT NULL,
    player_id   integer NOT NULL,
    value       integer NOT NULL,
    PRIMARY KEY (category, player_id)
);

CREATE FUNCTION league.update_aggregated_hall_of_fame() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    written integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_hall_of_fame'));
    DELETE FROM league.hall_of_fame;
    INSERT INTO league.hall_of_fame
    SELECT category, rank, player_id, value
    FROM (
        SELECT c.category, c.player_id, c.value,
               rank() OVER (PARTITION BY c.category ORDER BY c.value DESC) AS rank
        FROM (
            SELECT player_id, sum(goals) AS goals, sum(assists) AS assists,
                   count(*) AS appearances, count(*) FILTER (WHERE clean_sheet) AS clean_sheets,
                   sum(points) AS points
            FROM league.played
            GROUP BY player_id
        ) totals
        CROSS JOIN LATERAL (VALUES
            ('goals', totals.player_id, totals.goals),
            ('assists', totals.player_id, totals.assists),
            ('appearances', totals.player_id, totals.appearances),
            ('clean_sheets', totals.player_id, totals.clean_sheets),
            ('points', totals.player_id, totals.points)
        ) AS c (category, player_id, value)
    ) ranked
    WHERE rank <= 3;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;

-- 4. update_aggregated_recent_performance (tag recent_performance) ----------------------
-- Each player's last five appearances; form is newest first (e.g. 'WWDLW').
CREATE TABLE league.recent_performance (
    player_id   integer PRIMARY KEY,
    games       integer NOT NULL,
    goals       integer NOT NULL,
    assists     integer NOT NULL,
    points      integer NOT NULL,
    form        text NOT NULL
);

CREATE FUNCTION league.update_aggregated_recent_performance() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    written integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_recent_performance'));
    DELETE FROM league.recent_performance;
    INSERT INTO league.recent_performance
    SELECT player_id, count(*), sum(goals), sum(assists), sum(points),
           string_agg(result, '' ORDER BY played_on DESC, match_id DESC)
    FROM (
        SELECT p.*, row_number() OVER (PARTITION BY player_id
                                       ORDER BY played_on DESC, match_id DESC) AS recency
        FROM league.played p
    ) recent
    WHERE recency <= 5
    GROUP BY player_id;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;

-- 5. update_aggregated_season_honours_and_records (tag honour_roll) ---------------------
-- Per season: champion (most points), golden_boot (most goals), playmaker (most assists);
-- every tied player gets the honour; no golden boot or playmaker for a season without any.
CREATE TABLE league.honour_roll (
    season_id   integer NOT NULL,
    honour      text NOT NULL,
    player_id   integer NOT NULL,
    value       integer NOT NULL,
    PRIMARY KEY (season_id, honour, player_id)
);

CREATE FUNCTION league.update_aggregated_season_honours_and_records() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    written integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_season_honours_and_records'));
    DELETE FROM league.honour_roll;
    INSERT INTO league.honour_roll
    SELECT season_id, honour, player_id, value
    FROM (
        SELECT t.season_id, h.honour, t.player_id, h.value,
               rank() OVER (PARTITION BY t.season_id, h.honour ORDER BY h.value DESC) AS rank
        FROM (
            SELECT season_id, player_id, sum(points) AS points, sum(goals) AS goals,
                   sum(assists) AS assists
            FROM league.played
            GROUP BY season_id, player_id
        ) t
        CROSS JOIN LATERAL (VALUES
            ('champion', t.points), ('golden_boot', t.goals), ('playmaker', t.assists)
        ) AS h (honour, value)
    ) ranked
    WHERE rank = 1 AND (value > 0 OR honour = 'champion');
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;

-- 6. update_aggregated_match_report_cache (tag match_report) ----------------------------
-- One report per completed match: score, scorers (most goals first) and the player of the
-- match (most goals + assists, then most goals, then the lowest player id).
CREATE TABLE league.match_reports (
    match_id        integer PRIMARY KEY,
    season_id       integer NOT NULL,
    week            integer NOT NULL,
    played_on       date NOT NULL,
    goals_a         integer NOT NULL,
    goals_b         integer NOT NULL,
    scorers         jsonb NOT NULL,
    player_of_match integer NOT NULL
);

CREATE FUNCTION league.update_aggregated_match_report_cache() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    written integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_match_report_cache'));
    DELETE FROM league.match_reports;
    INSERT INTO league.match_reports
    SELECT m.id, m.season_id, m.week, m.played_on, m.goals_a, m.goals_b,
           coalesce((SELECT jsonb_agg(jsonb_build_object('player_id', a.player_id,
                                                         'name', pl.name, 'goals', a.goals)
                                      ORDER BY a.goals DESC, a.player_id)
                     FROM league.appearances a JOIN league.players pl ON pl.id = a.player_id
                     WHERE a.match_id = m.id AND a.goals > 0), '[]'::jsonb),
           (SELECT a.player_id FROM league.appearances a WHERE a.match_id = m.id
            ORDER BY a.goals + a.assists DESC, a.goals DESC, a.player_id LIMIT 1)
    FROM league.matches m
    WHERE m.status = 'completed';
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;

-- 7. update_aggregated_personal_bests (tag personal_bests) ------------------------------
-- Best match for goals and assists, longest runs of wins and of games unbeaten (W or D)
-- over a player's whole career, in match order.
CREATE TABLE league.personal_bests (
    player_id               integer PRIMARY KEY,
    most_goals_in_match     integer NOT NULL,
    most_assists_in_match   integer NOT NULL,
    longest_win_streak      integer NOT NULL,
    longest_unbeaten_streak integer NOT NULL
);

CREATE FUNCTION league.update_aggregated_personal_bests() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    written integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_personal_bests'));
    DELETE FROM league.personal_bests;
    WITH ordered AS (
        SELECT player_id, result, goals, assists,
               row_number() OVER (PARTITION BY player_id ORDER BY played_on, match_id) AS n
        FROM league.played
    ),
    -- Gaps and islands: within a run of qualifying games, n minus the rank among qualifying
    -- games is constant.
    wins AS (
        SELECT player_id, n - row_number() OVER (PARTITION BY player_id ORDER BY n) AS island
        FROM ordered WHERE result = 'W'
    ),
    unbeaten AS (
        SELECT player_id, n - row_number() OVER (PARTITION BY player_id ORDER BY n) AS island
        FROM ordered WHERE result <> 'L'
    ),
    win_runs AS (
        SELECT player_id, max(length) AS longest
        FROM (SELECT player_id, count(*) AS length FROM wins GROUP BY player_id, island) w
        GROUP BY player_id
    ),
    unbeaten_runs AS (
        SELECT player_id, max(length) AS longest
        FROM (SELECT player_id, count(*) AS length FROM unbeaten GROUP BY player_id, island) u
        GROUP BY player_id
    )
    INSERT INTO league.personal_bests
    SELECT o.player_id, max(o.goals), max(o.assists),
           coalesce(max(w.longest), 0), coalesce(max(u.longest), 0)
    FROM ordered o
    LEFT JOIN win_runs w ON w.player_id = o.player_id
    LEFT JOIN unbeaten_runs u ON u.player_id = o.player_id
    GROUP BY o.player_id;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;

-- 8. update_aggregated_player_profile_stats (tag player_profile_stats) ------------------
CREATE TABLE league.player_profiles (
    player_id       integer PRIMARY KEY,
    first_match     date NOT NULL,
    last_match      date NOT NULL,
    seasons_played  integer NOT NULL,
    games           integer NOT NULL,
    goals           integer NOT NULL,
    assists         integer NOT NULL,
    goals_per_game  numeric(6, 3) NOT NULL,
    win_pct         numeric(5, 1) NOT NULL
);

CREATE FUNCTION league.update_aggregated_player_profile_stats() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    written integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_player_profile_stats'));
    DELETE FROM league.player_profiles;
    INSERT INTO league.player_profiles
    SELECT player_id, min(played_on), max(played_on), count(DISTINCT season_id), count(*),
           sum(goals), sum(assists), round(sum(goals)::numeric / count(*), 3),
           round(100.0 * count(*) FILTER (WHERE result = 'W') / count(*), 1)
    FROM league.played
    GROUP BY player_id;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;

-- 9. update_aggregated_season_race_data (tag season_race_data) --------------------------
-- Points by week: every player of a season, their cumulative points at the end of each
-- week from 1 to the season's last completed week (0 before their first game).
CREATE TABLE league.season_race (
    season_id   integer NOT NULL,
    week        integer NOT NULL,
    player_id   integer NOT NULL,
    points      integer NOT NULL,
    PRIMARY KEY (season_id, week, player_id)
);

CREATE FUNCTION league.update_aggregated_season_race_data() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    written integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_season_race_data'));
    DELETE FROM league.season_race;
    INSERT INTO league.season_race
    SELECT grid.season_id, grid.week, grid.player_id,
           (sum(coalesce(p.points, 0)) OVER (PARTITION BY grid.season_id, grid.player_id
                                              ORDER BY grid.week))::integer
    FROM (
        SELECT s.season_id, w.week, s.player_id
        FROM (SELECT DISTINCT season_id, player_id FROM league.played) s
        JOIN (SELECT season_id, max(week) AS last_week FROM league.played GROUP BY season_id) l
          ON l.season_id = s.season_id
        CROSS JOIN LATERAL generate_series(1, l.last_week) AS w (week)
    ) grid
    LEFT JOIN (
        SELECT season_id, week, player_id, sum(points) AS points
        FROM league.played GROUP BY season_id, week, player_id
    ) p USING (season_id, week, player_id);
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;

-- 10. update_power_ratings (tag player_power_rating) ------------------------------------
-- An exponentially weighted moving average (EWMA) of match performance, in match order:
--   performance p = result points (3/1/0) + goals + 0.5 * assists + 1 for a clean sheet
--   rating r_1 = p_1;  r_n = 0.3 * p_n + 0.7 * r_(n-1)
-- computed set-based from its closed form: r_N = 0.7^(N-1) * p_1 + sum over k >= 2 of
-- 0.3 * 0.7^(N-k) * p_k, where N is the player's number of games.
CREATE TABLE league.power_ratings (
    player_id   integer PRIMARY KEY,
    rating      numeric(8, 3) NOT NULL,
    games       integer NOT NULL
);

CREATE FUNCTION league.update_power_ratings() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    written integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_power_ratings'));
    DELETE FROM league.power_ratings;
    INSERT INTO league.power_ratings
    SELECT player_id,
           round(sum(CASE WHEN n = 1 THEN power(0.7::float8, total - 1)
                          ELSE 0.3 * power(0.7::float8, total - n) END
                     * performance)::numeric, 3),
           max(total)
    FROM (
        SELECT player_id,
               points + goals + 0.5 * assists + CASE WHEN clean_sheet THEN 1 ELSE 0 END
                   AS performance,
               row_number() OVER (PARTITION BY player_id ORDER BY played_on, match_id) AS n,
               count(*) OVER (PARTITION BY player_id) AS total
        FROM league.played
    ) games
    GROUP BY player_id;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;
