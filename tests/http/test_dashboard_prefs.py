"""The dashboard's notification preferences page (/me/notifications): each user's own,
CSRF-protected, bad input shown back on the form with a 422."""

from __future__ import annotations

from tests.http.test_dashboard_security import (  # noqa: F401  (fixtures)
    Site,
    browser,
    csrf_of,
    get,
    keys,
    login,
    post,
    site,
)


async def test_a_user_sets_their_preferences_on_the_form(site: Site) -> None:  # noqa: F811
    site.sql("TRUNCATE nightcrew.notification_prefs")
    site.dev.settings.webhook_hosts = ["hooks.example.com"]
    async with browser(site.dev) as client:
        sid = await login(client, site.keys["alice"])
        page = await get(client, "/me/notifications", sid)
        assert page.status_code == 200 and 'name="failed_email"' in page.text
        token = csrf_of(page)
        form = {"csrf": token, "email": "alice@example.com",
                "webhook": "https://hooks.example.com/alice", "completed_in_app": "1",
                "failed_email": "1", "failed_webhook": "1"}  # fmt: skip
        saved = await post(client, "/me/notifications", sid, form)
        assert saved.status_code == 303 and saved.headers["location"].startswith(
            "/me/notifications"
        )
        shown = await get(client, "/me/notifications", sid)
        assert 'value="alice@example.com"' in shown.text
        assert 'name="failed_webhook" value="1" checked' in shown.text
        assert 'name="completed_email" value="1">' in shown.text  # not checked
        # Bob's page shows his own (empty) preferences.
        bob_sid = await login(client, site.keys["bob"])
        assert (
            'value="alice@example.com"'
            not in (await get(client, "/me/notifications", bob_sid)).text
        )
    assert site.sql(
        "SELECT user_id, email, webhook, on_completed, on_failed"
        " FROM nightcrew.notification_prefs"
    ) == [("alice", "alice@example.com", "https://hooks.example.com/alice", ["in_app"],
           ["email", "webhook"])]  # fmt: skip


async def test_bad_input_is_shown_on_the_form_and_nothing_is_stored(
    site: Site,  # noqa: F811
) -> None:
    site.sql("TRUNCATE nightcrew.notification_prefs")
    site.dev.settings.webhook_hosts = ["hooks.example.com"]
    async with browser(site.dev) as client:
        sid = await login(client, site.keys["alice"])
        token = csrf_of(await get(client, "/me/notifications", sid))
        refused = await post(
            client,
            "/me/notifications",
            sid,
            {"csrf": token, "webhook": "https://169.254.169.254/latest", "failed_webhook": "1"},
        )
        assert refused.status_code == 422
        assert "webhook: host &#39;169.254.169.254&#39; is not allowed" in refused.text
        assert 'value="https://169.254.169.254/latest"' in refused.text  # kept as typed
        no_address = await post(client, "/me/notifications", sid,
                                {"csrf": token, "completed_email": "1"})  # fmt: skip
        assert no_address.status_code == 422 and "email: give an address" in no_address.text
        # Without the session's CSRF token: refused.
        forged = await post(client, "/me/notifications", sid, {"email": "x@example.com"})
        assert forged.status_code == 403
    assert site.sql("SELECT count(*) FROM nightcrew.notification_prefs") == [(0,)]
