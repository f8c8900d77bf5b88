"""Notifications when jobs finish (email, signed webhooks, in-app) and health alerts.

See docs/notifications.md. Importing this package stays cheap: the job registry imports
:mod:`nightcrew.notify.spec`.
"""
