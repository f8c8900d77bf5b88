-- Sustained conditions of the checked rule families that no longer hold.
DELETE FROM nightcrew.alert_watch
WHERE split_part(rule, ':', 1) = ANY(%(families)s::text[]) AND NOT rule = ANY(%(holding)s::text[])
