"""Ids the notices are known by, derived so that a decision made twice names one notice."""

from __future__ import annotations

import hashlib


def notice_id(rule: str, trigger_event_id: str, recipient: str) -> str:
    """One notice per (rule, triggering event, recipient), whoever decides it and when."""
    digest = hashlib.sha256(f"{rule}\x1f{trigger_event_id}\x1f{recipient}".encode()).hexdigest()
    return f"n{digest[:31]}"


def message_id(notice: str, domain: str) -> str:
    """The mail's Message-ID: a receiver recognises the one duplicate a crash can cause."""
    return f"<{notice}@{domain}>"


def webhook_id(notice: str) -> str:
    """The webhook-id header: the same on every attempt of one notice."""
    return f"msg_{notice}"
