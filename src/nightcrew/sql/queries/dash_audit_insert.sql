-- One audit entry written by the acting user (the audit policy checks actor = that user).
INSERT INTO nightcrew.audit_log (actor, action, target, before, after)
VALUES (%(actor)s, %(action)s, %(target)s, %(before)s, %(after)s)
RETURNING id
