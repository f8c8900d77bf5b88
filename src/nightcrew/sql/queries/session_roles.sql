-- The role a connection acts as now, and its session's own role (control.py restores the
-- acting role after a step that must run as the session role).
SELECT current_user::text AS acting, session_user::text AS session
