"""The depositary's status table as of an instant: per State, its latest signature made by
then, and whether it had been withdrawn by then.

This fold over the signatures and withdrawals is the table's definition; the read model
answers the same from its rows, and the tests hold one against the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from agora_events.contracts.declarations import Capacity, DeclarationSigned, SignatureWithdrawn
from agora_events.contracts.states import all_states


@dataclass(frozen=True, slots=True)
class SignatoryRow:
    state: str
    state_name: str
    signatory_name: str
    signatory_title: str | None
    capacity: Capacity
    signed_at: datetime
    withdrawn_at: datetime | None = None
    withdrawal_reason: str | None = None
    demo: bool = False


@dataclass(frozen=True, slots=True)
class Status:
    rows: tuple[SignatoryRow, ...]
    """One per State that had signed by then, by State name."""

    @property
    def signed(self) -> int:
        """States whose signature stood at the instant."""
        return sum(1 for row in self.rows if row.withdrawn_at is None)

    @property
    def withdrawn(self) -> int:
        return sum(1 for row in self.rows if row.withdrawn_at is not None)


def status_as_of(
    events: Iterable[DeclarationSigned | SignatureWithdrawn], declaration_id: str, at: datetime
) -> Status:
    latest: dict[str, SignatoryRow] = {}
    for event in events:
        if event.declaration_id != declaration_id:
            continue
        if isinstance(event, DeclarationSigned) and event.signed_at <= at:
            latest[event.state] = SignatoryRow(
                state=event.state,
                state_name=all_states()[event.state].name,
                signatory_name=event.signatory_name,
                signatory_title=event.signatory_title,
                capacity=event.capacity,
                signed_at=event.signed_at,
                demo=event.demo,
            )
        elif isinstance(event, SignatureWithdrawn) and event.withdrawn_at <= at:
            row = latest.get(event.state)
            if row is not None and row.signed_at == event.signed_at:
                latest[event.state] = replace(
                    row, withdrawn_at=event.withdrawn_at, withdrawal_reason=event.reason
                )
    return Status(tuple(sorted(latest.values(), key=lambda row: (row.state_name, row.state))))
