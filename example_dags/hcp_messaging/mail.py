"""Email through the SMTP provider Airflow already installs (``apache-airflow-providers-smtp``).

:func:`send_email` sends plain text (rendered as simple HTML, which is what ``SmtpHook`` sends) through an
``smtp`` connection (default ``smtp_default``): host, port, login/password when the server wants them, and
extras ``from_email``, ``disable_tls``, ``disable_ssl``, ``timeout``, ``retry_limit``. For callbacks use the
provider's own notifier, ``airflow.providers.smtp.notifications.smtp.SmtpNotifier`` (``send_smtp_notification``).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)

DEFAULT_SMTP_CONN_ID = "smtp_default"


def text_to_html(text: str) -> str:
    """Plain text as minimal HTML: blank lines separate paragraphs, line breaks are kept, all text escaped."""
    paragraphs = [p.strip("\n") for p in text.strip().split("\n\n") if p.strip()]
    body = "".join(
        "<p>" + "<br>".join(html.escape(line.strip()) for line in p.split("\n")) + "</p>" for p in paragraphs
    )
    return f'<html><body style="font-family: sans-serif">{body}</body></html>'


def mask_email(address: str) -> str:
    """For logs: ``ava.smith@example.com`` → ``a***@example.com``."""
    local, at, domain = (address or "").strip().partition("@")
    return f"{local[:1]}***@{domain}" if at else "***"


def send_email(
    to: str | Iterable[str],
    subject: str,
    text: str,
    *,
    smtp_conn_id: str = DEFAULT_SMTP_CONN_ID,
    from_email: str | None = None,
    html_content: str | None = None,
) -> None:
    """Send one email through ``SmtpHook``; ``from_email`` defaults to the connection's extra ``from_email``."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    recipients = [to] if isinstance(to, str) else list(to)
    with SmtpHook(smtp_conn_id=smtp_conn_id) as smtp:
        smtp.send_email_smtp(
            to=recipients,
            subject=subject,
            html_content=html_content if html_content is not None else text_to_html(text),
            from_email=from_email,
        )
    log.info("Sent email %r to %s", subject, ", ".join(mask_email(r) for r in recipients))


__all__ = ["DEFAULT_SMTP_CONN_ID", "mask_email", "send_email", "text_to_html"]
