"""Email over SMTP (aiosmtplib): the message a notice becomes, and its sending.

The Message-ID derives from the notice id, so the one duplicate a crash can cause (the relay
accepted the mail, the process died before recording it) carries the same Message-ID and a
receiver can recognise it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import aiosmtplib

from agora_events.contracts.notifications import NoticeDecided

from .domain import message_id
from .ical import invitation
from .settings import NotificationsSettings
from .templates import render

SESSION_RULES = ("session.moved", "session.cancelled")


class MailUndelivered(Exception):
    """The relay refused the mail or could not be reached; ``permanent`` for a 5xx."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


def compose(
    notice: NoticeDecided,
    settings: NotificationsSettings,
    *,
    digest: Sequence[NoticeDecided] = (),
    now: datetime | None = None,
) -> EmailMessage:
    subject, body = render(notice, digest)
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = notice.address or ""
    message["Subject"] = subject
    message["Message-ID"] = message_id(notice.notice_id, settings.message_id_domain)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    final = (list(digest) or [notice])[-1]
    if final.rule in SESSION_RULES:
        organiser = parseaddr(settings.mail_from)[1] or "notifications@agora.localhost"
        ics = invitation(final.facts, organiser=organiser, stamp=now or datetime.now(UTC))
        method = "CANCEL" if final.rule == "session.cancelled" else "REQUEST"
        message.add_attachment(
            ics,
            maintype="text",
            subtype="calendar",
            filename="invite.ics",
            params={"method": method},
        )
    # After the body: setting the content drops the Content-* headers already there.
    message["Content-Language"] = notice.language
    return message


class Mailer:
    def __init__(self, settings: NotificationsSettings) -> None:
        self._settings = settings

    async def send(self, message: EmailMessage) -> None:
        s = self._settings
        password = s.smtp_password.get_secret_value() if s.smtp_password else None
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=password,
                start_tls=s.smtp_starttls,
                use_tls=s.smtp_tls,
                cert_bundle=s.smtp_ca_file,
                timeout=s.smtp_timeout,
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            # The relay's settings are wrong, not the mail: retried while someone fixes them.
            raise MailUndelivered(f"SMTP {exc.code}: login refused") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise MailUndelivered(f"SMTP {exc.code}", permanent=500 <= exc.code < 600) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise MailUndelivered(type(exc).__name__) from exc
