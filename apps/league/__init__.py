"""The league statistics application: players, seasons and matches; ten SQL statistics
functions refreshed by one background run per trigger (post-match, admin, nightly cron),
in parallel, then cache invalidation by tags in every web process (docs/league.md)."""
