"""Text a read model can hold: the string types of every request body.

PostgreSQL text cannot hold NUL, and control characters in a name or an id are never meant:
they come from a broken client or a probe, and end up in headers, logs and calendars. So the
edge refuses them (422, naming the field) before a command is decided:

* ``Line``: names, ids, emails, titles, labels; no C0 or C1 control character, no DEL.
* ``Prose``: free text that may span lines (a reason); tab, line feed and carriage return
  allowed, every other control character refused.

(A lone surrogate such as ``"\\ud800"``, valid JSON but no character, pydantic refuses
itself.) Use them like ``str``: ``name: Line = Field(min_length=1, max_length=200)``.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

_NOT_IN_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NOT_IN_PROSE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _refuse(found: re.Match[str], allowed: str) -> PydanticCustomError:
    return PydanticCustomError(
        "control_character",
        "must not contain U+{code} (position {position}): {allowed}",
        {"code": f"{ord(found[0]):04X}", "position": found.start(), "allowed": allowed},
    )


def line(value: str) -> str:
    found = _NOT_IN_LINE.search(value)
    if found is not None:
        raise _refuse(found, "control characters are not allowed here")
    return value


def prose(value: str) -> str:
    found = _NOT_IN_PROSE.search(value)
    if found is not None:
        raise _refuse(found, "of the control characters only tab and line breaks are allowed")
    return value


Line = Annotated[str, AfterValidator(line)]
"""One line of text without control characters."""

Prose = Annotated[str, AfterValidator(prose)]
"""Free text: tab and line breaks allowed, other control characters not."""
