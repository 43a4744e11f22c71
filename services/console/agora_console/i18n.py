"""The console's words in English and French, and how a request picks its language:
``?lang=`` (remembered in a cookie), else the cookie, else the browser's Accept-Language."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Literal

Language = Literal["en", "fr"]
LANGUAGES: tuple[Language, ...] = ("en", "fr")

WORDS: dict[str, tuple[str, str]] = {
    "console": ("Agora console", "Console Agora"),
    "skip": ("Skip to content", "Aller au contenu"),
    "nav": ("Pages", "Pages"),
    "programme": ("Programme", "Programme"),
    "declaration": ("Declaration", "Déclaration"),
    "gate": ("Gate", "Contrôle d'accès"),
    "sign_in": ("Organiser sign-in", "Connexion organisateur"),
    "sign_out": ("Sign out", "Se déconnecter"),
    "token": ("Organiser token", "Jeton organisateur"),
    "wrong_token": (
        "That token is not the organiser token.",
        "Ce jeton n'est pas le jeton organisateur.",
    ),
    "language": ("Language", "Langue"),
    "live": (
        "Live: changes appear as they happen.",
        "En direct : les changements s'affichent aussitôt.",
    ),
    "no_edition": ("No programme yet.", "Pas encore de programme."),
    "not_published": (
        "No version of this programme has been published yet.",
        "Aucune version de ce programme n'a encore été publiée.",
    ),
    "version": (
        "Version {version} ({label}), published {published}",
        "Version {version} ({label}), publiée le {published}",
    ),
    "days": ("Days", "Jours"),
    "now_next": ("Now and next", "En ce moment et ensuite"),
    "on_now": ("On now:", "En ce moment :"),
    "up_next": ("Next, at {time}:", "Ensuite, à {time} :"),
    "version_picker": ("Version", "Version"),
    "changelog": ("What version {version} changed", "Ce que la version {version} a changé"),
    "change.new": ("New", "Nouvelles"),
    "change.moved": ("Moved", "Déplacées"),
    "change.cancelled": ("Cancelled", "Annulées"),
    "change.changed": ("Renamed or otherwise changed", "Renommées ou modifiées"),
    "filters": ("Filters", "Filtres"),
    "room": ("Room", "Salle"),
    "kind": ("Kind", "Type"),
    "workshop": ("Workshop", "Atelier"),
    "any": ("Any", "Tous"),
    "apply": ("Apply", "Appliquer"),
    "clear": ("Clear filters", "Effacer les filtres"),
    "nothing_kept": (
        "No session that day matches these filters.",
        "Aucune séance ce jour-là ne correspond à ces filtres.",
    ),
    "grid": ("Sessions of {day}, by room", "Séances du {day}, par salle"),
    "time": ("Time", "Heure"),
    "tentative": ("time not confirmed", "horaire non confirmé"),
    "cancelled": ("cancelled", "annulée"),
    "speakers": ("Speakers", "Intervenants"),
    "no_speakers": ("No speaker announced.", "Aucun intervenant annoncé."),
    "calendar": ("Add to calendar (.ics)", "Ajouter au calendrier (.ics)"),
    "back_programme": ("Back to the programme", "Retour au programme"),
    "no_session": (
        "No published session has that id.",
        "Aucune séance publiée ne porte cet identifiant.",
    ),
    "no_declaration": (
        "No declaration is open for signature.",
        "Aucune déclaration n'est ouverte à la signature.",
    ),
    "priorities": ("Priorities", "Priorités"),
    "text_hash": ("Text (SHA-256)", "Texte (SHA-256)"),
    "window": ("Open for signature", "Ouverte à la signature"),
    "window_from": ("from {opens}", "à partir du {opens}"),
    "window_until": ("until {closes}", "jusqu'au {closes}"),
    "window_no_end": ("with no closing date", "sans date de clôture"),
    "launched_by": ("Launched by {state}", "Lancée par {state}"),
    "status_table": ("Status of signatures as of {as_of}", "État des signatures au {as_of}"),
    "as_of": ("As of", "Au"),
    "show": ("Show", "Afficher"),
    "now": ("Now", "Maintenant"),
    "csv": ("Download CSV", "Télécharger en CSV"),
    "counts": (
        "States signed: {signed} · withdrawn: {withdrawn}",
        "États signataires : {signed} · retraits : {withdrawn}",
    ),
    "state": ("State", "État"),
    "signed_on": ("Signed on", "Signée le"),
    "by": ("By", "Par"),
    "capacity": ("Capacity", "Qualité"),
    "withdrawn_on": ("Withdrawn on", "Retirée le"),
    "no_signatures": ("No State had signed by then.", "Aucun État n'avait signé à cette date."),
    "demo_row": ("demo data", "données de démonstration"),
    "accreditation": ("Accreditation", "Accréditation"),
    "workshops": ("Workshops", "Ateliers"),
    "operations": ("Operations", "Exploitation"),
    "status": ("Status", "Statut"),
    "category": ("Category", "Catégorie"),
    "name": ("Name", "Nom"),
    "delegation": ("Delegation", "Délégation"),
    "registered": ("Registered", "Inscription"),
    "decision": ("Decision", "Décision"),
    "approve": ("Approve", "Approuver"),
    "reject": ("Reject", "Refuser"),
    "reject_reason": ("Reason for rejecting {name}", "Motif du refus de {name}"),
    "reason_required": ("A rejection needs a reason.", "Un refus doit être motivé."),
    "approved_one": ("{name} approved.", "{name} : accréditation approuvée."),
    "rejected_one": ("{name} rejected.", "{name} : accréditation refusée."),
    "queue_empty": ("Nobody in this part of the queue.", "Personne dans cette partie de la file."),
    "duplicates": (
        "Possible duplicates (same name, same delegation)",
        "Doublons possibles (même nom, même délégation)",
    ),
    "no_duplicates": ("No possible duplicate.", "Aucun doublon possible."),
    "delegations": ("Delegations by country", "Délégations par pays"),
    "approved_of": ("{approved} approved of {all}", "{approved} approuvés sur {all}"),
    "status.submitted": ("Submitted", "Soumises"),
    "status.approved": ("Approved", "Approuvées"),
    "status.rejected": ("Rejected", "Refusées"),
    "status.withdrawn": ("Withdrawn", "Retirées"),
    "places": (
        "{enrolled} of {capacity} places taken, {waitlisted} waiting",
        "{enrolled} places prises sur {capacity}, {waitlisted} en attente",
    ),
    "promotions": (
        "{count} promoted from the waitlist, last {at}",
        "{count} promus depuis la liste d'attente, dernier le {at}",
    ),
    "no_promotions": ("No promotion yet.", "Aucune promotion pour l'instant."),
    "closed": ("Closed: {reason}", "Fermée : {reason}"),
    "no_workshops": (
        "Registration offers no workshop session yet.",
        "L'enregistrement ne propose encore aucune séance d'atelier.",
    ),
    "streams": ("Streams", "Flux"),
    "stream": ("Stream", "Flux"),
    "messages": ("Events", "Événements"),
    "last_sequence": ("Last sequence", "Dernière séquence"),
    "chain_head": ("Audit chain head", "Tête de la chaîne d'audit"),
    "last_at": ("Last event at", "Dernier événement le"),
    "projections": ("The console's projections", "Projections de la console"),
    "services": ("Services", "Services"),
    "service": ("Service", "Service"),
    "projection_lag": ("Projection lag", "Retard des projections"),
    "reactor_lag": ("Reactor lag", "Retard des réacteurs"),
    "not_answering": ("Does not answer.", "Ne répond pas."),
    "projection": ("Projection", "Projection"),
    "checkpoint": ("Checkpoint", "Point de reprise"),
    "lag": ("Lag", "Retard"),
    "state_of": ("State", "État"),
    "dead_letters": ("Dead letters", "Lettres mortes"),
    "no_dead_letters": ("None parked.", "Aucune en attente."),
    "readiness": ("Readiness: {status}", "Disponibilité : {status}"),
    "badge": ("Badge number", "Numéro de badge"),
    "badge_hint": ("As printed, e.g. 7K2M-9QXD-C", "Tel qu'imprimé, p. ex. 7K2M-9QXD-C"),
    "check_in": ("Check in", "Entrée"),
    "check_out": ("Check out", "Sortie"),
    "inside_now": ("Inside now: {count}", "Présents : {count}"),
    "welcome": ("Welcome, {name}: checked in.", "Bienvenue, {name} : entrée enregistrée."),
    "goodbye": ("{name}: checked out.", "{name} : sortie enregistrée."),
    "refused": ("Not admitted", "Accès refusé"),
    "reason.not_a_badge": ("That is not a badge number.", "Ce n'est pas un numéro de badge."),
    "reason.unknown_badge": ("Unknown badge.", "Badge inconnu."),
    "reason.not_approved": ("Accreditation not approved.", "Accréditation non approuvée."),
    "reason.rejected": ("Accreditation rejected.", "Accréditation refusée."),
    "reason.withdrawn": ("Participant withdrawn.", "Participant retiré."),
    "reason.already_inside": ("Already inside.", "Déjà à l'intérieur."),
    "reason.not_inside": (
        "Not inside: nothing to check out.",
        "Pas à l'intérieur : aucune sortie à enregistrer.",
    ),
    "reason.service": ("Registration refused: {detail}", "L'enregistrement a refusé : {detail}"),
    "reason.unreachable": (
        "Registration cannot be reached; try again.",
        "L'enregistrement est injoignable ; réessayez.",
    ),
    "kind.opening_ceremony": ("Opening ceremony", "Cérémonie d'ouverture"),
    "kind.keynote": ("Keynote", "Discours liminaire"),
    "kind.plenary": ("Plenary", "Plénière"),
    "kind.ministerial_roundtable": ("Ministerial roundtable", "Table ronde ministérielle"),
    "kind.workshop_session": ("Workshop session", "Séance d'atelier"),
    "kind.break": ("Break", "Pause"),
    "kind.lunch": ("Lunch", "Déjeuner"),
    "kind.study_tour": ("Study tour", "Visite d'étude"),
    "kind.dinner": ("Dinner", "Dîner"),
    "kind.awards_ceremony": ("Awards ceremony", "Remise des prix"),
    "kind.reporting_back": ("Reporting back", "Restitution"),
    "kind.closing": ("Closing", "Clôture"),
    "role.speaker": ("Speaker", "Intervenant"),
    "role.keynote_speaker": ("Keynote speaker", "Orateur principal"),
    "role.moderator": ("Moderator", "Modérateur"),
    "role.rapporteur": ("Rapporteur", "Rapporteur"),
    "role.chair": ("Chair", "Président de séance"),
    "role.presenter": ("Presenter", "Présentateur"),
    "role.discussant": ("Discussant", "Discutant"),
    "role.host": ("Host", "Hôte"),
    "capacity.head_of_state_or_government": (
        "Head of State or Government",
        "Chef d'État ou de gouvernement",
    ),
    "capacity.minister": ("Minister", "Ministre"),
    "capacity.head_of_delegation": ("Head of delegation", "Chef de délégation"),
    "capacity.full_powers": ("Full powers", "Pleins pouvoirs"),
}

MONTHS = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
}
WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
}


def pick(query: str | None, cookie: str | None, accept: str | None) -> Language:
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate  # type: ignore[return-value]
    for part in (accept or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag  # type: ignore[return-value]
    return "en"


def translator(language: Language) -> Callable[..., str]:
    index = LANGUAGES.index(language)

    def t(key: str, **values: object) -> str:
        words = WORDS.get(key)
        if words is None:  # a kind or role this console does not know: say it as it is
            return key.split(".", 1)[-1].replace("_", " ")
        return words[index].format(**values) if values else words[index]

    return t


def long_date(day: date, language: Language) -> str:
    weekday = WEEKDAYS[language][day.weekday()]
    month = MONTHS[language][day.month - 1]
    return f"{weekday} {day.day} {month} {day.year}"


def short_date(day: date, language: Language) -> str:
    weekday = WEEKDAYS[language][day.weekday()][:3]
    month = MONTHS[language][day.month - 1]
    if language == "fr":  # juin and juillet share their first letters: the whole month
        return f"{weekday}. {day.day} {month}"
    return f"{weekday} {day.day} {month[:3]}"


def moment(at: datetime, language: Language) -> str:
    """A date and time as a person reads it, with its UTC offset."""
    offset = at.strftime("%z")
    zone = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    return f"{long_date(at.date(), language)}, {at:%H:%M} ({zone})"
