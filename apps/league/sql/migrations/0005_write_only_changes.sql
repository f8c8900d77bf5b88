-- The ten statistics functions write only what changed (issue 17).
--
-- 0002's functions deleted and reinserted their whole table(s) on every run: ~16,500 rows
-- and ~3.5 MB of WAL even when nothing was new, hence frequent checkpoints, dead tuples
-- and commit-latency tails for every other transaction of the cluster. Now each table's
-- fresh contents are a view (league.fresh_<table>: 0002's SELECT, unchanged), and
-- league.write_changes() brings the table to it in one statement: it deletes the rows whose
-- key left the view, inserts new keys and updates a row only when a column differs, so a
-- refresh with nothing new writes nothing. Results are exactly 0002's.
--
-- Each function returns the rows it changed (inserted + updated + deleted), which
-- league.run_functions.rows_written now records; advisory locks as in 0002.

-- Bring ``target`` to the rows of the view ``fresh`` (same columns, in order), matching
-- rows by the target's primary key; return the rows changed. Only rows that are new or
-- differ (fresh EXCEPT current) reach INSERT ... ON CONFLICT: its DO UPDATE locks every
-- conflicting row before testing the WHERE, a WAL record per row (~0.8 MB for season_race
-- alone) even when nothing is updated. The WHERE stays: it compares with the values as
-- stored (EXCLUDED is cast to the columns' types), so the count is of rows really changed.
-- EXCEPT and IS DISTINCT FROM treat NULLs as equal; keys are primary keys, never NULL.
-- The view is read once (MATERIALIZED): the delete and the insert both use it.
CREATE FUNCTION league.write_changes(target regclass, fresh regclass) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    keys      text;  -- a, b
    keys_f    text;  -- f.a, f.b
    keys_t    text;  -- t.a, t.b
    others    text;  -- c, d
    others_t  text;  -- t.c, t.d
    others_ex text;  -- EXCLUDED.c, EXCLUDED.d
    changed   integer;
BEGIN
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
               FILTER (WHERE a.attnum = ANY (i.indkey)),
           string_agg('f.' || quote_ident(a.attname), ', ' ORDER BY a.attnum)
               FILTER (WHERE a.attnum = ANY (i.indkey)),
           string_agg('t.' || quote_ident(a.attname), ', ' ORDER BY a.attnum)
               FILTER (WHERE a.attnum = ANY (i.indkey)),
           string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
               FILTER (WHERE a.attnum <> ALL (i.indkey)),
           string_agg('t.' || quote_ident(a.attname), ', ' ORDER BY a.attnum)
               FILTER (WHERE a.attnum <> ALL (i.indkey)),
           string_agg('EXCLUDED.' || quote_ident(a.attname), ', ' ORDER BY a.attnum)
               FILTER (WHERE a.attnum <> ALL (i.indkey))
    INTO keys, keys_f, keys_t, others, others_t, others_ex
    FROM pg_attribute a
    JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
    WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped;
    IF keys IS NULL OR others IS NULL THEN
        RAISE EXCEPTION 'league.write_changes: % needs a primary key and another column', target;
    END IF;
    EXECUTE format($sql$
        WITH fresh AS MATERIALIZED (SELECT * FROM %1$s),
        gone AS (
            DELETE FROM %2$s t
            WHERE NOT EXISTS (SELECT FROM fresh f WHERE (%3$s) = (%4$s))
            RETURNING 1
        ),
        written AS (
            INSERT INTO %2$s AS t
            SELECT * FROM fresh EXCEPT SELECT * FROM %2$s
            ON CONFLICT (%5$s) DO UPDATE SET (%6$s) = ROW(%7$s)
            WHERE (%8$s) IS DISTINCT FROM (%7$s)
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM written)
        $sql$, fresh, target, keys_f, keys_t, keys, others, others_ex, others_t)
    INTO changed;
    RETURN changed;
END
$$;

-- The fresh contents of each statistics table: 0002's SELECTs, columns named as the
-- table's.

CREATE VIEW league.fresh_season_stats (
    season_id, player_id, games, wins, draws, losses, goals, assists, clean_sheets, points
) AS
    SELECT season_id, player_id, count(*), count(*) FILTER (WHERE result = 'W'),
           count(*) FILTER (WHERE result = 'D'), count(*) FILTER (WHERE result = 'L'),
           sum(goals), sum(assists), count(*) FILTER (WHERE clean_sheet), sum(points)
    FROM league.played
    GROUP BY season_id, player_id;

CREATE VIEW league.fresh_half_season_stats (
    season_id, half, player_id, games, wins, draws, losses, goals, assists, clean_sheets,
    points
) AS
    SELECT p.season_id, CASE WHEN p.week * 2 <= s.weeks THEN 1 ELSE 2 END AS half,
           p.player_id, count(*), count(*) FILTER (WHERE result = 'W'),
           count(*) FILTER (WHERE result = 'D'), count(*) FILTER (WHERE result = 'L'),
           sum(goals), sum(assists), count(*) FILTER (WHERE clean_sheet), sum(points)
    FROM league.played p
    JOIN league.seasons s ON s.id = p.season_id
    GROUP BY p.season_id, half, p.player_id;

CREATE VIEW league.fresh_all_time_stats (
    player_id, games, wins, draws, losses, goals, assists, clean_sheets, points,
    points_per_game
) AS
    SELECT player_id, count(*), count(*) FILTER (WHERE result = 'W'),
           count(*) FILTER (WHERE result = 'D'), count(*) FILTER (WHERE result = 'L'),
           sum(goals), sum(assists), count(*) FILTER (WHERE clean_sheet), sum(points),
           round(sum(points)::numeric / count(*), 3)
    FROM league.played
    GROUP BY player_id;

CREATE VIEW league.fresh_hall_of_fame (category, rank, player_id, value) AS
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
    WHERE rank <= 3;

CREATE VIEW league.fresh_recent_performance (
    player_id, games, goals, assists, points, form
) AS
    SELECT player_id, count(*), sum(goals), sum(assists), sum(points),
           string_agg(result, '' ORDER BY played_on DESC, match_id DESC)
    FROM (
        SELECT p.*, row_number() OVER (PARTITION BY player_id
                                       ORDER BY played_on DESC, match_id DESC) AS recency
        FROM league.played p
    ) recent
    WHERE recency <= 5
    GROUP BY player_id;

CREATE VIEW league.fresh_honour_roll (season_id, honour, player_id, value) AS
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
    WHERE rank = 1 AND (value > 0 OR honour = 'champion');

CREATE VIEW league.fresh_match_reports (
    match_id, season_id, week, played_on, goals_a, goals_b, scorers, player_of_match
) AS
    SELECT m.id AS match_id, m.season_id, m.week, m.played_on, m.goals_a, m.goals_b,
           coalesce((SELECT jsonb_agg(jsonb_build_object('player_id', a.player_id,
                                                         'name', pl.name, 'goals', a.goals)
                                      ORDER BY a.goals DESC, a.player_id)
                     FROM league.appearances a JOIN league.players pl ON pl.id = a.player_id
                     WHERE a.match_id = m.id AND a.goals > 0), '[]'::jsonb),
           (SELECT a.player_id FROM league.appearances a WHERE a.match_id = m.id
            ORDER BY a.goals + a.assists DESC, a.goals DESC, a.player_id LIMIT 1)
    FROM league.matches m
    WHERE m.status = 'completed';

CREATE VIEW league.fresh_personal_bests (
    player_id, most_goals_in_match, most_assists_in_match, longest_win_streak,
    longest_unbeaten_streak
) AS
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
    )
    SELECT * FROM fresh;

CREATE VIEW league.fresh_player_profiles (
    player_id, first_match, last_match, seasons_played, games, goals, assists,
    goals_per_game, win_pct
) AS
    SELECT player_id, min(played_on), max(played_on), count(DISTINCT season_id), count(*),
           sum(goals), sum(assists), round(sum(goals)::numeric / count(*), 3),
           round(100.0 * count(*) FILTER (WHERE result = 'W') / count(*), 1)
    FROM league.played
    GROUP BY player_id;

CREATE VIEW league.fresh_season_race (season_id, week, player_id, points) AS
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
    ) p USING (season_id, week, player_id);

CREATE VIEW league.fresh_power_ratings (player_id, rating, games) AS
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
    GROUP BY player_id;

CREATE OR REPLACE FUNCTION league.update_half_and_full_season_stats() RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_half_and_full_season_stats'));
    RETURN league.write_changes('league.season_stats', 'league.fresh_season_stats')
         + league.write_changes('league.half_season_stats', 'league.fresh_half_season_stats');
END
$$;

CREATE OR REPLACE FUNCTION league.update_aggregated_all_time_stats() RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_all_time_stats'));
    RETURN league.write_changes('league.all_time_stats', 'league.fresh_all_time_stats');
END
$$;

CREATE OR REPLACE FUNCTION league.update_aggregated_hall_of_fame() RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_hall_of_fame'));
    RETURN league.write_changes('league.hall_of_fame', 'league.fresh_hall_of_fame');
END
$$;

CREATE OR REPLACE FUNCTION league.update_aggregated_recent_performance() RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_recent_performance'));
    RETURN league.write_changes('league.recent_performance', 'league.fresh_recent_performance');
END
$$;

CREATE OR REPLACE FUNCTION league.update_aggregated_season_honours_and_records() RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_season_honours_and_records'));
    RETURN league.write_changes('league.honour_roll', 'league.fresh_honour_roll');
END
$$;

CREATE OR REPLACE FUNCTION league.update_aggregated_match_report_cache() RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_match_report_cache'));
    RETURN league.write_changes('league.match_reports', 'league.fresh_match_reports');
END
$$;

CREATE OR REPLACE FUNCTION league.update_aggregated_personal_bests() RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_personal_bests'));
    RETURN league.write_changes('league.personal_bests', 'league.fresh_personal_bests');
END
$$;

CREATE OR REPLACE FUNCTION league.update_aggregated_player_profile_stats() RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_player_profile_stats'));
    RETURN league.write_changes('league.player_profiles', 'league.fresh_player_profiles');
END
$$;

CREATE OR REPLACE FUNCTION league.update_aggregated_season_race_data() RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_aggregated_season_race_data'));
    RETURN league.write_changes('league.season_race', 'league.fresh_season_race');
END
$$;

CREATE OR REPLACE FUNCTION league.update_power_ratings() RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('league.update_power_ratings'));
    RETURN league.write_changes('league.power_ratings', 'league.fresh_power_ratings');
END
$$;
