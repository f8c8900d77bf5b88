-- One audit entry, written in the transaction of the change it records.
INSERT INTO nightcrew.audit_log (actor, action, target, before, after)
VALUES (%(actor)s, %(action)s, %(target)s, %(before)s, %(after)s)
RETURNING id
