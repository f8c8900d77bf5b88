"""Database access: where the database is, connections, and the schema migrations."""

from nightcrew.db.migrate import applied_versions, available_migrations, migrate
from nightcrew.db.url import resolve_database_url

__all__ = ["applied_versions", "available_migrations", "migrate", "resolve_database_url"]
