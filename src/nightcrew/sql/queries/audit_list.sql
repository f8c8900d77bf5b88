-- Newest audit entries first (row-level security: admins see all, users their own).
SELECT id, at, actor, action, target, before, after
FROM nightcrew.audit_log
WHERE (%(target)s::text IS NULL OR target = %(target)s)
  AND (%(cursor)s::bigint IS NULL OR id < %(cursor)s)
ORDER BY id DESC
LIMIT %(limit)s
