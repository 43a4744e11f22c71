"""The States a delegation may represent (the 193 UN Member States and the 2 observer
States, listed once in ``agora_events.contracts.states``), and how a typed code is read."""

from __future__ import annotations

import difflib

from agora_events.contracts.states import State, all_states
from agora_events.decider import InvalidCommand


def lookup(code: str) -> State:
    """The State with this alpha-3 code (any letter case), or a refusal that suggests some."""
    wanted = code.strip().upper()
    state = all_states().get(wanted)
    if state is not None:
        return state
    reason = f"{code!r} is not the ISO 3166-1 alpha-3 code of a UN Member State or observer State"
    close = suggest(code)
    if close:
        options = ", ".join(f"{s.alpha3} ({s.name})" for s in close)
        raise InvalidCommand(f"{reason}; did you mean {options}?")
    raise InvalidCommand(
        f"{reason}; use three letters such as UZB for Uzbekistan (GET /states lists them), "
        "or no delegation for an international organisation"
    )


def suggest(text: str, limit: int = 3) -> list[State]:
    """States whose code or name resembles ``text``, best first."""
    states = all_states()
    wanted = text.strip()
    if not wanted:
        return []
    by_name = {s.name.lower(): s for s in states.values()}
    found: list[State] = []
    exact = by_name.get(wanted.lower())
    if exact is not None:
        found.append(exact)
    if len(wanted) == 2:
        found += [s for code, s in states.items() if code.startswith(wanted.upper())]
    if len(wanted) >= 4:
        found += [s for name, s in by_name.items() if wanted.lower() in name]
    found += [states[c] for c in difflib.get_close_matches(wanted.upper(), states, limit, 0.6)]
    found += [by_name[n] for n in difflib.get_close_matches(wanted.lower(), by_name, limit, 0.75)]
    unique = list(dict.fromkeys(found))
    return unique[:limit]


__all__ = ["State", "all_states", "lookup", "suggest"]
