"""``nightcrew worker/serve --app nightcrew_apps.app:app``: one App hosting every application.

For the command line only; code builds its own with :func:`nightcrew_apps.build_app`.
"""

from nightcrew_apps import build_app

app = build_app()
"""An App with every application of ``apps/`` installed."""
