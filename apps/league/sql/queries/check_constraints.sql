-- Check the deferred constraints now (a result needs two teams) instead of at commit.
SET CONSTRAINTS ALL IMMEDIATE
