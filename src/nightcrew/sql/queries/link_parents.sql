-- Link a job just written to its parents (nightcrew.link_parents, migration 0012): lock
-- them, record the edges, count the unfinished ones; refuses unknown or invisible parents.
SELECT nightcrew.link_parents(%(id)s::uuid, %(parents)s::uuid[], %(on_parent_failure)s::text)
