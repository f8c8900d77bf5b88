-- Reserved rate slots by key. The primary key (job_id, key) serves the grant and the
-- reservations' retention, which look rows up by job; set_limit / clear_limit (release a
-- key's reservations) and the limits' retention (NOT EXISTS a reservation of the key)
-- look them up by key, and scanned the whole table for it.
-- Plain CREATE INDEX (migrations run in a transaction): the table holds one row per job
-- given back by a rate limit and not yet run, small enough that the brief write lock on it
-- does not matter; see docs/operations.md, "Upgrading".
CREATE INDEX limit_reservations_key_idx ON nightcrew.limit_reservations (key);
