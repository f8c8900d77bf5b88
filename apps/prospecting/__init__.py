"""Prospecting: lead-discovery campaigns over rate-limited paid providers (place search,
email finder, email verifier), staged with live progress, running cost, budget, cancel
and resume. ``prospecting.app.install(app)`` adds it to any nightcrew App."""
