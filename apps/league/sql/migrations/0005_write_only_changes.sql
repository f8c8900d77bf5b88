-- The ten statistics functions write only what changed (issue 17).
--
-- 0002's functions deleted and reinserted their whole table(s) on every run: ~16,500 rows
-- and ~3.5 MB of WAL even when nothing was new, hence frequent checkpoints, dead tuples
-- and commit-latency tails for every other transaction of the cluster. Each function now
-- computes the same fresh set, then, in one statement per table, deletes the rows whose
-- key left it, inserts new keys and updates a row only when a column differs: a refresh
-- with nothing new writes nothing. Results are exactly 0002's.
--
-- Only rows that are new or differ (fresh EXCEPT current) reach INSERT ... ON CONFLICT: its
-- DO UPDATE locks every conflicting row before testing the WHERE, a WAL record per row
-- (~0.8 MB for season_race alone) even when nothing is updated. The WHERE stays: it
-- compares with the values as stored (EXCLUDED is cast to the columns' types), so the count
-- is of rows really changed. EXCEPT and IS DISTINCT FROM treat NULLs as equal; keys are
-- primary keys, never NULL.
--
-- Each function returns the rows it changed (inserted + updated + deleted), which
-- league.run_functions.rows_written now records; advisory locks as in 0002.

-- 1. update_half_and_full_season_stats (tags season_stats, half_season_stats) -----------
CREATE OR REPLACE FUNCTION league.update_half_and_full_season_stats() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    full_changed integer;
    half_changed integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_half_and_full_season_stats'));
    WITH fresh AS (
        SELECT season_id, player_id, count(*), count(*) FILTER (WHERE result = 'W'),
               count(*) FILTER (WHERE result = 'D'), count(*) FILTER (WHERE result = 'L'),
               sum(goals), sum(assists), count(*) FILTER (WHERE clean_sheet), sum(points)
        FROM league.played
        GROUP BY season_id, player_id
    ),
    gone AS (
        DELETE FROM league.season_stats t
        WHERE NOT EXISTS (SELECT FROM fresh f
                          WHERE (f.season_id, f.player_id) = (t.season_id, t.player_id))
        RETURNING 1
    ),
    written AS (
        INSERT INTO league.season_stats AS t
        SELECT * FROM fresh EXCEPT SELECT * FROM league.season_stats
        ON CONFLICT (season_id, player_id) DO UPDATE
        SET (games, wins, draws, losses, goals, assists, clean_sheets, points)
            = (EXCLUDED.games, EXCLUDED.wins, EXCLUDED.draws, EXCLUDED.losses,
               EXCLUDED.goals, EXCLUDED.assists, EXCLUDED.clean_sheets, EXCLUDED.points)
        WHERE (t.games, t.wins, t.draws, t.losses, t.goals, t.assists, t.clean_sheets,
               t.points)
              IS DISTINCT FROM
              (EXCLUDED.games, EXCLUDED.wins, EXCLUDED.draws, EXCLUDED.losses,
               EXCLUDED.goals, EXCLUDED.assists, EXCLUDED.clean_sheets, EXCLUDED.points)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM written) INTO full_changed;
    WITH fresh AS (
        SELECT p.season_id, CASE WHEN p.week * 2 <= s.weeks THEN 1 ELSE 2 END AS half,
               p.player_id, count(*), count(*) FILTER (WHERE result = 'W'),
               count(*) FILTER (WHERE result = 'D'), count(*) FILTER (WHERE result = 'L'),
               sum(goals), sum(assists), count(*) FILTER (WHERE clean_sheet), sum(points)
        FROM league.played p
        JOIN league.seasons s ON s.id = p.season_id
        GROUP BY p.season_id, half, p.player_id
    ),
    gone AS (
        DELETE FROM league.half_season_stats t
        WHERE NOT EXISTS (SELECT FROM fresh f
                          WHERE (f.season_id, f.half, f.player_id)
                                = (t.season_id, t.half, t.player_id))
        RETURNING 1
    ),
    written AS (
        INSERT INTO league.half_season_stats AS t
        SELECT * FROM fresh EXCEPT SELECT * FROM league.half_season_stats
        ON CONFLICT (season_id, half, player_id) DO UPDATE
        SET (games, wins, draws, losses, goals, assists, clean_sheets, points)
            = (EXCLUDED.games, EXCLUDED.wins, EXCLUDED.draws, EXCLUDED.losses,
               EXCLUDED.goals, EXCLUDED.assists, EXCLUDED.clean_sheets, EXCLUDED.points)
        WHERE (t.games, t.wins, t.draws, t.losses, t.goals, t.assists, t.clean_sheets,
               t.points)
              IS DISTINCT FROM
              (EXCLUDED.games, EXCLUDED.wins, EXCLUDED.draws, EXCLUDED.losses,
               EXCLUDED.goals, EXCLUDED.assists, EXCLUDED.clean_sheets, EXCLUDED.points)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM written) INTO half_changed;
    RETURN full_changed + half_changed;
END
$$;

-- 2. update_aggregated_all_time_stats (tag all_time_stats) ------------------------------
CREATE OR REPLACE FUNCTION league.update_aggregated_all_time_stats() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    changed integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_all_time_stats'));
    WITH fresh AS (
        SELECT player_id, count(*), count(*) FILTER (WHERE result = 'W'),
               count(*) FILTER (WHERE result = 'D'), count(*) FILTER (WHERE result = 'L'),
               sum(goals), sum(assists), count(*) FILTER (WHERE clean_sheet), sum(points),
               round(sum(points)::numeric / count(*), 3)
        FROM league.played
        GROUP BY player_id
    ),
    gone AS (
        DELETE FROM league.all_time_stats t
        WHERE NOT EXISTS (SELECT FROM fresh f WHERE f.player_id = t.player_id)
        RETURNING 1
    ),
    written AS (
        INSERT INTO league.all_time_stats AS t
        SELECT * FROM fresh EXCEPT SELECT * FROM league.all_time_stats
        ON CONFLICT (player_id) DO UPDATE
        SET (games, wins, draws, losses, goals, assists, clean_sheets, points, points_per_game)
            = (EXCLUDED.games, EXCLUDED.wins, EXCLUDED.draws, EXCLUDED.losses,
               EXCLUDED.goals, EXCLUDED.assists, EXCLUDED.clean_sheets, EXCLUDED.points,
               EXCLUDED.points_per_game)
        WHERE (t.games, t.wins, t.draws, t.losses, t.goals, t.assists, t.clean_sheets,
               t.points, t.points_per_game)
              IS DISTINCT FROM
              (EXCLUDED.games, EXCLUDED.wins, EXCLUDED.draws, EXCLUDED.losses,
               EXCLUDED.goals, EXCLUDED.assists, EXCLUDED.clean_sheets, EXCLUDED.points,
               EXCLUDED.points_per_game)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM written) INTO changed;
    RETURN changed;
END
$$;

-- 3. update_aggregated_hall_of_fame (tag hall_of_fame) ----------------------------------
-- Keyed by (category, player_id), not by rank: a player moving from rank 2 to 1 is an
-- update of their row; one dropping out of the top 3 is deleted.
CREATE OR REPLACE FUNCTION league.update_aggregated_hall_of_fame() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    changed integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_hall_of_fame'));
    WITH fresh AS (
        SELECT category, rank, player_id, value
        FROM (
            SELECT c.category, c.player_id, c.value,
                   rank() OVER (PARTITION BY c.category ORDER BY c.value DESC) AS rank
            FROM (
                SELECT player_id, sum(goals) AS goals, sum(assists) AS assists,
                       count(*) AS appearances,
                       count(*) FILTER (WHERE clean_sheet) AS clean_sheets,
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
        WHERE rank <= 3
    ),
    gone AS (
        DELETE FROM league.hall_of_fame t
        WHERE NOT EXISTS (SELECT FROM fresh f
                          WHERE (f.category, f.player_id) = (t.category, t.player_id))
        RETURNING 1
    ),
    written AS (
        INSERT INTO league.hall_of_fame AS t
        SELECT * FROM fresh EXCEPT SELECT * FROM league.hall_of_fame
        ON CONFLICT (category, player_id) DO UPDATE
        SET (rank, value) = (EXCLUDED.rank, EXCLUDED.value)
        WHERE (t.rank, t.value) IS DISTINCT FROM (EXCLUDED.rank, EXCLUDED.value)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM written) INTO changed;
    RETURN changed;
END
$$;

-- 4. update_aggregated_recent_performance (tag recent_performance) ----------------------
CREATE OR REPLACE FUNCTION league.update_aggregated_recent_performance() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    changed integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_recent_performance'));
    WITH fresh AS (
        SELECT player_id, count(*), sum(goals), sum(assists), sum(points),
               string_agg(result, '' ORDER BY played_on DESC, match_id DESC)
        FROM (
            SELECT p.*, row_number() OVER (PARTITION BY player_id
                                           ORDER BY played_on DESC, match_id DESC) AS recency
            FROM league.played p
        ) recent
        WHERE recency <= 5
        GROUP BY player_id
    ),
    gone AS (
        DELETE FROM league.recent_performance t
        WHERE NOT EXISTS (SELECT FROM fresh f WHERE f.player_id = t.player_id)
        RETURNING 1
    ),
    written AS (
        INSERT INTO league.recent_performance AS t
        SELECT * FROM fresh EXCEPT SELECT * FROM league.recent_performance
        ON CONFLICT (player_id) DO UPDATE
        SET (games, goals, assists, points, form)
            = (EXCLUDED.games, EXCLUDED.goals, EXCLUDED.assists, EXCLUDED.points,
               EXCLUDED.form)
        WHERE (t.games, t.goals, t.assists, t.points, t.form)
              IS DISTINCT FROM
              (EXCLUDED.games, EXCLUDED.goals, EXCLUDED.assists, EXCLUDED.points,
               EXCLUDED.form)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM written) INTO changed;
    RETURN changed;
END
$$;

-- 5. update_aggregated_season_honours_and_records (tag honour_roll) ---------------------
-- The key includes the player: ties are several rows of one honour, and a new holder is a
-- delete of the old holder's row and an insert.
CREATE OR REPLACE FUNCTION league.update_aggregated_season_honours_and_records()
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    changed integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_season_honours_and_records'));
    WITH fresh AS (
        SELECT season_id, honour, player_id, value
        FROM (
            SELECT t.season_id, h.honour, t.player_id, h.value,
                   rank() OVER (PARTITION BY t.season_id, h.honour ORDER BY h.value DESC)
                       AS rank
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
        WHERE rank = 1 AND (value > 0 OR honour = 'champion')
    ),
    gone AS (
        DELETE FROM league.honour_roll t
        WHERE NOT EXISTS (SELECT FROM fresh f
                          WHERE (f.season_id, f.honour, f.player_id)
                                = (t.season_id, t.honour, t.player_id))
        RETURNING 1
    ),
    written AS (
        INSERT INTO league.honour_roll AS t
        SELECT * FROM fresh EXCEPT SELECT * FROM league.honour_roll
        ON CONFLICT (season_id, honour, player_id) DO UPDATE
        SET value = EXCLUDED.value
        WHERE t.value IS DISTINCT FROM EXCLUDED.value
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM written) INTO changed;
    RETURN changed;
END
$$;

-- 6. update_aggregated_match_report_cache (tag match_report) ----------------------------
CREATE OR REPLACE FUNCTION league.update_aggregated_match_report_cache() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    changed integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_match_report_cache'));
    WITH fresh AS (
        SELECT m.id AS match_id, m.season_id, m.week, m.played_on, m.goals_a, m.goals_b,
               coalesce((SELECT jsonb_agg(jsonb_build_object('player_id', a.player_id,
                                                             'name', pl.name, 'goals', a.goals)
                                          ORDER BY a.goals DESC, a.player_id)
                         FROM league.appearances a JOIN league.players pl ON pl.id = a.player_id
                         WHERE a.match_id = m.id AND a.goals > 0), '[]'::jsonb),
               (SELECT a.player_id FROM league.appearances a WHERE a.match_id = m.id
                ORDER BY a.goals + a.assists DESC, a.goals DESC, a.player_id LIMIT 1)
        FROM league.matches m
        WHERE m.status = 'completed'
    ),
    gone AS (
        DELETE FROM league.match_reports t
        WHERE NOT EXISTS (SELECT FROM fresh f WHERE f.match_id = t.match_id)
        RETURNING 1
    ),
    written AS (
        -- jsonb compares by value (key order and whitespace are not kept), so an unchanged
        -- scorers list is equal.
        INSERT INTO league.match_reports AS t
        SELECT * FROM fresh EXCEPT SELECT * FROM league.match_reports
        ON CONFLICT (match_id) DO UPDATE
        SET (season_id, week, played_on, goals_a, goals_b, scorers, player_of_match)
            = (EXCLUDED.season_id, EXCLUDED.week, EXCLUDED.played_on, EXCLUDED.goals_a,
               EXCLUDED.goals_b, EXCLUDED.scorers, EXCLUDED.player_of_match)
        WHERE (t.season_id, t.week, t.played_on, t.goals_a, t.goals_b, t.scorers,
               t.player_of_match)
              IS DISTINCT FROM
              (EXCLUDED.season_id, EXCLUDED.week, EXCLUDED.played_on, EXCLUDED.goals_a,
               EXCLUDED.goals_b, EXCLUDED.scorers, EXCLUDED.player_of_match)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM written) INTO changed;
    RETURN changed;
END
$$;

-- 7. update_aggregated_personal_bests (tag personal_bests) ------------------------------
CREATE OR REPLACE FUNCTION league.update_aggregated_personal_bests() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    changed integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_personal_bests'));
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
    ),
    fresh AS (
        SELECT o.player_id, max(o.goals), max(o.assists),
               coalesce(max(w.longest), 0), coalesce(max(u.longest), 0)
        FROM ordered o
        LEFT JOIN win_runs w ON w.player_id = o.player_id
        LEFT JOIN unbeaten_runs u ON u.player_id = o.player_id
        GROUP BY o.player_id
    ),
    gone AS (
        DELETE FROM league.personal_bests t
        WHERE NOT EXISTS (SELECT FROM fresh f WHERE f.player_id = t.player_id)
        RETURNING 1
    ),
    written AS (
        INSERT INTO league.personal_bests AS t
        SELECT * FROM fresh EXCEPT SELECT * FROM league.personal_bests
        ON CONFLICT (player_id) DO UPDATE
        SET (most_goals_in_match, most_assists_in_match, longest_win_streak,
             longest_unbeaten_streak)
            = (EXCLUDED.most_goals_in_match, EXCLUDED.most_assists_in_match,
               EXCLUDED.longest_win_streak, EXCLUDED.longest_unbeaten_streak)
        WHERE (t.most_goals_in_match, t.most_assists_in_match, t.longest_win_streak,
               t.longest_unbeaten_streak)
              IS DISTINCT FROM
              (EXCLUDED.most_goals_in_match, EXCLUDED.most_assists_in_match,
               EXCLUDED.longest_win_streak, EXCLUDED.longest_unbeaten_streak)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM written) INTO changed;
    RETURN changed;
END
$$;

-- 8. update_aggregated_player_profile_stats (tag player_profile_stats) ------------------
CREATE OR REPLACE FUNCTION league.update_aggregated_player_profile_stats() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    changed integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_player_profile_stats'));
    WITH fresh AS (
        SELECT player_id, min(played_on), max(played_on), count(DISTINCT season_id), count(*),
               sum(goals), sum(assists), round(sum(goals)::numeric / count(*), 3),
               round(100.0 * count(*) FILTER (WHERE result = 'W') / count(*), 1)
        FROM league.played
        GROUP BY player_id
    ),
    gone AS (
        DELETE FROM league.player_profiles t
        WHERE NOT EXISTS (SELECT FROM fresh f WHERE f.player_id = t.player_id)
        RETURNING 1
    ),
    written AS (
        INSERT INTO league.player_profiles AS t
        SELECT * FROM fresh EXCEPT SELECT * FROM league.player_profiles
        ON CONFLICT (player_id) DO UPDATE
        SET (first_match, last_match, seasons_played, games, goals, assists, goals_per_game,
             win_pct)
            = (EXCLUDED.first_match, EXCLUDED.last_match, EXCLUDED.seasons_played,
               EXCLUDED.games, EXCLUDED.goals, EXCLUDED.assists, EXCLUDED.goals_per_game,
               EXCLUDED.win_pct)
        WHERE (t.first_match, t.last_match, t.seasons_played, t.games, t.goals, t.assists,
               t.goals_per_game, t.win_pct)
              IS DISTINCT FROM
              (EXCLUDED.first_match, EXCLUDED.last_match, EXCLUDED.seasons_played,
               EXCLUDED.games, EXCLUDED.goals, EXCLUDED.assists, EXCLUDED.goals_per_game,
               EXCLUDED.win_pct)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM written) INTO changed;
    RETURN changed;
END
$$;

-- 9. update_aggregated_season_race_data (tag season_race_data) --------------------------
-- 14,844 of the demo league's ~16,500 statistics rows: a new match adds its season's new
-- week and changes only the points of that season's players from that week on.
CREATE OR REPLACE FUNCTION league.update_aggregated_season_race_data() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    changed integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_season_race_data'));
    WITH fresh AS (
        SELECT grid.season_id, grid.week, grid.player_id,
               (sum(coalesce(p.points, 0)) OVER (PARTITION BY grid.season_id, grid.player_id
                                                  ORDER BY grid.week))::integer
        FROM (
            SELECT s.season_id, w.week, s.player_id
            FROM (SELECT DISTINCT season_id, player_id FROM league.played) s
            JOIN (SELECT season_id, max(week) AS last_week FROM league.played
                  GROUP BY season_id) l
              ON l.season_id = s.season_id
            CROSS JOIN LATERAL generate_series(1, l.last_week) AS w (week)
        ) grid
        LEFT JOIN (
            SELECT season_id, week, player_id, sum(points) AS points
            FROM league.played GROUP BY season_id, week, player_id
        ) p USING (season_id, week, player_id)
    ),
    gone AS (
        DELETE FROM league.season_race t
        WHERE NOT EXISTS (SELECT FROM fresh f
                          WHERE (f.season_id, f.week, f.player_id)
                                = (t.season_id, t.week, t.player_id))
        RETURNING 1
    ),
    written AS (
        INSERT INTO league.season_race AS t
        SELECT * FROM fresh EXCEPT SELECT * FROM league.season_race
        ON CONFLICT (season_id, week, player_id) DO UPDATE
        SET points = EXCLUDED.points
        WHERE t.points IS DISTINCT FROM EXCLUDED.points
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM written) INTO changed;
    RETURN changed;
END
$$;

-- 10. update_power_ratings (tag player_power_rating) ------------------------------------
-- The rating is rounded to the column's 3 decimals before it is compared, so an unchanged
-- rating is equal (numeric compares by value: 2.80 = 2.8).
CREATE OR REPLACE FUNCTION league.update_power_ratings() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    changed integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_power_ratings'));
    WITH fresh AS (
        SELECT player_id,
               round(sum(CASE WHEN n = 1 THEN power(0.7::float8, total - 1)
                              ELSE 0.3 * power(0.7::float8, total - n) END
                         * performance)::numeric, 3),
               max(total)
        FROM (
            SELECT player_id,
                   points + goals + 0.5 * assists + CASE WHEN clean_sheet THEN 1 ELSE 0 END
                       AS performance,
                   row_number() OVER (PARTITION BY player_id ORDER BY played_on, match_id)
                       AS n,
                   count(*) OVER (PARTITION BY player_id) AS total
            FROM league.played
        ) games
        GROUP BY player_id
    ),
    gone AS (
        DELETE FROM league.power_ratings t
        WHERE NOT EXISTS (SELECT FROM fresh f WHERE f.player_id = t.player_id)
        RETURNING 1
    ),
    written AS (
        INSERT INTO league.power_ratings AS t
        SELECT * FROM fresh EXCEPT SELECT * FROM league.power_ratings
        ON CONFLICT (player_id) DO UPDATE
        SET (rating, games) = (EXCLUDED.rating, EXCLUDED.games)
        WHERE (t.rating, t.games) IS DISTINCT FROM (EXCLUDED.rating, EXCLUDED.games)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM written) INTO changed;
    RETURN changed;
END
$$;
