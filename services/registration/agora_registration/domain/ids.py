"""Participant ids and badge numbers.

A participant id is 8 characters of Crockford's base 32 (40 random bits, chosen by the
service). The badge number is the same 40 bits, upper case, grouped, with a Luhn mod 32
check character: unique because ids are (a new id is guarded by the store's "scope is
empty" expectation), stable across re-issues, and needing no shared counter.
"""

from __future__ import annotations

import re

from agora_events.decider import InvalidCommand, NotFound

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
ID_LENGTH = 8
_PARTICIPANT_ID = re.compile(f"^[{ALPHABET}]{{{ID_LENGTH}}}$")
_BADGE = re.compile(r"^([0-9A-Z]{4})-?([0-9A-Z]{4})-?([0-9A-Z])$")


def participant_id_from_bits(bits: int) -> str:
    if not 0 <= bits < 32**ID_LENGTH:
        raise ValueError("a participant id holds 40 bits")
    return "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in reversed(range(ID_LENGTH)))


def check_participant_id(participant_id: str) -> str:
    if not _PARTICIPANT_ID.match(participant_id):
        raise NotFound(
            f"{participant_id!r} is not a participant id (8 characters of "
            f"{ALPHABET!r}, as returned on registration)"
        )
    return participant_id


def _check_character(payload: str) -> str:
    """Luhn mod N over Crockford base 32: catches every single-character slip and most
    swaps of neighbours."""
    total, factor = 0, 2
    for character in reversed(payload):
        addend = factor * ALPHABET.index(character)
        total += addend // 32 + addend % 32
        factor = 1 if factor == 2 else 2
    return ALPHABET[(32 - total % 32) % 32]


def badge_number(participant_id: str) -> str:
    check_participant_id(participant_id)
    code = participant_id.upper()
    return f"{code[:4]}-{code[4:]}-{_check_character(participant_id).upper()}"


def participant_id_from_badge(badge: str) -> str:
    """The participant a badge belongs to; refuses a misread or mistyped number."""
    normalised = badge.strip().upper().translate(str.maketrans("OIL", "011"))
    match = _BADGE.match(normalised)
    if match is None or any(c.lower() not in ALPHABET for c in normalised.replace("-", "")):
        raise InvalidCommand(f"{badge!r} is not a badge number; they read like 7K2M-9QXD-C")
    participant_id = (match.group(1) + match.group(2)).lower()
    if _check_character(participant_id) != match.group(3).lower():
        raise InvalidCommand(f"badge number {badge!r} has a typo: its check character is wrong")
    return participant_id
