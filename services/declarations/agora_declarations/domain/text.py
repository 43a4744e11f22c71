"""A declaration's text and the hash that fixes it.

The hash is taken over a canonical form, so that the same words typed on another system hash
the same: line ends normalised to LF (CRLF and lone CR both become LF), Unicode normalised to
NFC (an accent typed as one code point or as a letter and a combining mark is one text), then
encoded as UTF-8. Nothing else is touched: a changed space or word is a changed text.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from agora_events.decider import InvalidCommand

_LINE_ENDS = re.compile(r"\r\n?")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
MAX_TEXT = 200_000


def canonical(text: str) -> str:
    return unicodedata.normalize("NFC", _LINE_ENDS.sub("\n", text))


def text_hash(text: str) -> str:
    """The SHA-256, in lower-case hex, of the text's canonical form."""
    return hashlib.sha256(canonical(text).encode("utf-8")).hexdigest()


MAX_LANGUAGE = 35
"""The longest tag kept (the read model's column; RFC 5646 advises supporting 35)."""


def check_language(language: str) -> str:
    if len(language) > MAX_LANGUAGE or not _LANGUAGE.match(language):
        raise InvalidCommand(
            f"{language!r} is not a language tag; use a BCP 47 tag such as en, fr or ru"
        )
    return language


def check_text(text: str) -> str:
    if not text.strip():
        raise InvalidCommand("the text is empty; send the declaration's full text")
    if len(text) > MAX_TEXT:
        raise InvalidCommand(f"the text has {len(text)} characters; at most {MAX_TEXT} are kept")
    return text
