"""What a notice says, in English and French: a subject and a plain-text body per rule.

Pure: the notice's facts in, text out. A digest (several changes to one session) renders the
final state once, then each change in the order it happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from agora_events.contracts.notifications import NoticeDecided

Texts = dict[str, tuple[str, str]]

TEXTS: dict[str, Texts] = {
    "en": {
        "registration.received": (
            "Your registration was received",
            "Dear {name},\n\nwe received your registration. An organiser will review your "
            "accreditation and you will hear from us again.",
        ),
        "accreditation.approved": (
            "Your accreditation is approved",
            "Dear {name},\n\nyour accreditation is approved. Your badge number is "
            "{badge_number}; collect your badge at the accreditation desk.",
        ),
        "accreditation.rejected": (
            "Your accreditation was not approved",
            "Dear {name},\n\nyour accreditation was not approved.\nReason: {reason}",
        ),
        "enrolment.waitlisted": (
            "You are on the waitlist: {title}",
            "Dear {name},\n\n'{title}' is full. You are number {position} on its waitlist; "
            "if a place frees up it is yours, without asking again.",
        ),
        "enrolment.promoted": (
            "You have a place: {title}",
            "Dear {name},\n\na place in '{title}' freed up and is now yours.\n"
            "When: {when}\nWhere: {room}",
        ),
        "session.moved": (
            "Changed: {title}",
            "Dear {name},\n\n'{title}' has changed. It now takes place:\n"
            "When: {when}\nWhere: {room}\n\nWhat changed:\n{changes}\n\n"
            "The attached invitation updates your calendar.",
        ),
        "session.cancelled": (
            "Cancelled: {title}",
            "Dear {name},\n\n'{title}' is cancelled.\n\nWhat changed:\n{changes}\n\n"
            "The attached cancellation removes it from your calendar.",
        ),
        "declaration.signed": (
            "{state} signed {declaration_id}",
            "{state} signed the declaration {declaration_id} on {at_text}, through "
            "{signatory} ({capacity}).",
        ),
        "declaration.withdrawn": (
            "{state} withdrew its signature of {declaration_id}",
            "{state} withdrew its signature of the declaration {declaration_id} on {at_text}."
            "\nReason: {reason}",
        ),
        "endpoint.disabled": (
            "Webhook endpoint {endpoint_id} disabled",
            "The webhook endpoint {endpoint_id} was disabled: {reason}\n"
            "Re-enable it through the notifications API once it answers again.",
        ),
        "change.moved": ("", "- moved from {old_when} ({old_room}) to {new_when} ({new_room})"),
        "change.cancelled": ("", "- cancelled: {reason}"),
    },
    "fr": {
        "registration.received": (
            "Votre inscription a été reçue",
            "Bonjour {name},\n\nnous avons reçu votre inscription. Un organisateur va "
            "examiner votre accréditation ; vous aurez de nos nouvelles.",
        ),
        "accreditation.approved": (
            "Votre accréditation est approuvée",
            "Bonjour {name},\n\nvotre accréditation est approuvée. Votre numéro de badge est "
            "{badge_number} ; retirez votre badge au bureau des accréditations.",
        ),
        "accreditation.rejected": (
            "Votre accréditation n'a pas été approuvée",
            "Bonjour {name},\n\nvotre accréditation n'a pas été approuvée.\nMotif : {reason}",
        ),
        "enrolment.waitlisted": (
            "Vous êtes sur la liste d'attente : {title}",
            "Bonjour {name},\n\n« {title} » est complet. Vous êtes numéro {position} sur la "
            "liste d'attente ; si une place se libère, elle vous revient sans autre démarche.",
        ),
        "enrolment.promoted": (
            "Vous avez une place : {title}",
            "Bonjour {name},\n\nune place s'est libérée dans « {title} » ; elle est à vous.\n"
            "Quand : {when}\nOù : {room}",
        ),
        "session.moved": (
            "Modifié : {title}",
            "Bonjour {name},\n\n« {title} » a changé. La séance a désormais lieu :\n"
            "Quand : {when}\nOù : {room}\n\nCe qui a changé :\n{changes}\n\n"
            "L'invitation jointe met votre agenda à jour.",
        ),
        "session.cancelled": (
            "Annulé : {title}",
            "Bonjour {name},\n\n« {title} » est annulé.\n\nCe qui a changé :\n{changes}\n\n"
            "L'annulation jointe retire la séance de votre agenda.",
        ),
        "declaration.signed": (
            "{state} a signé {declaration_id}",
            "{state} a signé la déclaration {declaration_id} le {at_text}, par "
            "{signatory} ({capacity}).",
        ),
        "declaration.withdrawn": (
            "{state} a retiré sa signature de {declaration_id}",
            "{state} a retiré sa signature de la déclaration {declaration_id} le {at_text}."
            "\nMotif : {reason}",
        ),
        "endpoint.disabled": (
            "Point de terminaison webhook {endpoint_id} désactivé",
            "Le point de terminaison webhook {endpoint_id} a été désactivé : {reason}\n"
            "Réactivez-le par l'API des notifications dès qu'il répond de nouveau.",
        ),
        "change.moved": ("", "- déplacé du {old_when} ({old_room}) au {new_when} ({new_room})"),
        "change.cancelled": ("", "- annulé : {reason}"),
    },
}
TIME_FORMAT = {"en": "%Y-%m-%d %H:%M", "fr": "%d/%m/%Y %H:%M"}


def _when(language: str, starts: str, ends: str, zone: str) -> str:
    tz = ZoneInfo(zone)
    start = datetime.fromisoformat(starts).astimezone(tz)
    end = datetime.fromisoformat(ends).astimezone(tz)
    return f"{start.strftime(TIME_FORMAT[language])}\u2013{end.strftime('%H:%M')} ({zone})"


def _change_line(language: str, facts: dict[str, Any]) -> str:
    change: dict[str, Any] = facts.get("change") or {}
    zone = facts.get("time_zone") or "UTC"
    if change.get("kind") == "moved":
        values = {
            "old_when": _when(language, change["old_starts_at"], change["old_ends_at"], zone),
            "new_when": _when(language, change["new_starts_at"], change["new_ends_at"], zone),
            "old_room": change.get("old_room", ""),
            "new_room": change.get("new_room", ""),
        }
        return TEXTS[language]["change.moved"][1].format(**values)
    return TEXTS[language]["change.cancelled"][1].format(reason=change.get("reason", ""))


def render(notice: NoticeDecided, digest: Sequence[NoticeDecided] = ()) -> tuple[str, str]:
    """The subject and body of ``notice``; ``digest``: every notice the mail carries, in
    order (the last holds the final state), when it carries several."""
    language = notice.language if notice.language in TEXTS else "en"
    carried = list(digest) or [notice]
    final = carried[-1]
    rule = final.rule
    facts: dict[str, Any] = dict(final.facts)
    if "starts_at" in facts and "ends_at" in facts:
        facts["when"] = _when(
            language, facts["starts_at"], facts["ends_at"], facts.get("time_zone") or "UTC"
        )
    if "at" in facts:
        facts["at_text"] = datetime.fromisoformat(facts["at"]).strftime(TIME_FORMAT[language])
    facts["changes"] = "\n".join(_change_line(language, n.facts) for n in carried)
    subject, body = TEXTS[language][rule]
    return subject.format_map(_Lenient(facts)), body.format_map(_Lenient(facts))


class _Lenient(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""
