"""Email over SMTP (``smtp_*`` settings), plain text with an HTML alternative."""

from __future__ import annotations

import email.utils
from collections.abc import Sequence
from email.message import EmailMessage

import aiosmtplib

from nightcrew.config import Settings
from nightcrew.notify.errors import DeliveryError, PermanentDeliveryError
from nightcrew.notify.render import Email


def build_message(settings: Settings, to: Sequence[str], mail: Email) -> EmailMessage:
    """The MIME message of ``mail``."""
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(to)
    message["Subject"] = mail.subject
    message["Date"] = email.utils.formatdate(localtime=False)
    message["Message-ID"] = email.utils.make_msgid(domain="nightcrew")
    message.set_content(mail.text)
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html")
    return message


async def send_email(settings: Settings, to: Sequence[str], mail: Email) -> None:
    """Send ``mail`` to ``to``; :class:`DeliveryError` when the server can't be reached or
    refuses for now, :class:`PermanentDeliveryError` when SMTP is not configured or every
    recipient is rejected. Cancelling it (the caller's deadline) hangs up at once."""
    if not settings.smtp_host:
        raise PermanentDeliveryError("no SMTP server configured (set NIGHTCREW_SMTP_HOST)")
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    client = aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_user,
        password=password,
        use_tls=settings.smtp_tls == "ssl",
        start_tls=settings.smtp_tls == "starttls",
        timeout=settings.smtp_timeout_seconds,
    )
    try:
        await client.connect()
        await client.send_message(build_message(settings, to, mail))
    except aiosmtplib.SMTPRecipientsRefused as exc:
        raise PermanentDeliveryError(f"every recipient was refused: {exc}") from None
    except aiosmtplib.SMTPResponseException as exc:
        message = f"SMTP server answered {exc.code}: {exc.message}"
        if 500 <= exc.code < 600:
            raise PermanentDeliveryError(message, status_code=exc.code) from None
        raise DeliveryError(message, status_code=exc.code) from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise DeliveryError(
            f"SMTP server {settings.smtp_host}:{settings.smtp_port}: {exc}"
        ) from None
    finally:
        # Hang up without QUIT (and without waiting for its answer, as aiosmtplib's context
        # manager would even when cancelled): the caller's deadline must end the exchange
        # at once, and once the message is accepted a stalled QUIT must not fail the send.
        client.close()
