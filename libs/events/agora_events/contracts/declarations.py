"""Events of the declarations context (stream DECLARATIONS).

Three aggregates write here:

* ``declarations.declaration.<declaration_id>.<event>``: a declaration's draft (title,
  priorities, one text per language), its opening for signature, which fixes every text by
  its SHA-256, and the signature window;
* ``declarations.state.<alpha3>.<event>``: one State's acts as a signatory, for every
  declaration: the full powers the organiser recorded, its signatures and their withdrawals.
  One State is one consistency scope, which is what makes "one signature per State" hold;
* ``declarations.participant.<participant_id>.<event>``: what declarations knows of a
  participant, learnt from REGISTRATION's events (name, category, delegation, status).

Subjects carry ids and State codes only; names travel in event bodies and nowhere else.
Published contract: fields may be added (optional, with defaults) within a major version;
anything else is a new version with an upcaster.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ..catalogue import DomainEvent, catalogue
from .registration import Category

OpenTo = Literal["member_states", "member_and_observer_states"]
Capacity = Literal["head_of_state_or_government", "minister", "head_of_delegation", "full_powers"]
Standing = Literal["submitted", "approved", "rejected", "withdrawn"]

_STATE = "ISO 3166-1 alpha-3 code of the State"
_LANGUAGE = "BCP 47 language tag of the text, e.g. en, fr, ru"
_SHA256 = "SHA-256 (lower-case hex) of the text's canonical form: UTF-8, NFC, LF line ends"


class Priority(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    number: int = Field(ge=1)
    title: str


class FixedText(BaseModel):
    """One language's text as it was opened for signature, named by its hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    language: str = Field(description=_LANGUAGE)
    sha256: str = Field(pattern="^[0-9a-f]{64}$", description=_SHA256)


# -- declaration ---------------------------------------------------------------------------


@catalogue.event("declarations", "declaration", "drafted", id_field="declaration_id")
class DeclarationDrafted(DomainEvent):
    """A declaration is drafted; its texts follow, one per language."""

    declaration_id: str
    title: str
    edition_id: str = Field(description="The forum edition that launches it")
    launched_by: str = Field(description=f"{_STATE} whose initiative it is")
    launched_on: date | None = None
    priorities: tuple[Priority, ...] = ()
    source: str | None = Field(
        default=None, description="Where the declaration's facts come from, and what they omit"
    )


@catalogue.event("declarations", "declaration", "redrafted", id_field="declaration_id")
class DeclarationRedrafted(DomainEvent):
    """Before opening only. Only the fields that changed are set."""

    declaration_id: str
    title: str | None = None
    priorities: tuple[Priority, ...] | None = None


@catalogue.event("declarations", "declaration", "text_set", id_field="declaration_id")
class DeclarationTextSet(DomainEvent):
    """Before opening only: the draft text in one language, replacing any earlier one."""

    declaration_id: str
    language: str = Field(description=_LANGUAGE)
    text: str
    sha256: str = Field(pattern="^[0-9a-f]{64}$", description=_SHA256)


@catalogue.event("declarations", "declaration", "opened", id_field="declaration_id")
class DeclarationOpenedForSignature(DomainEvent):
    """Every text is fixed by its hash from now on; signing is possible from ``opens_at``
    until ``closes_at`` (never, when absent)."""

    declaration_id: str
    texts: tuple[FixedText, ...] = Field(min_length=1)
    opens_at: AwareDatetime
    closes_at: AwareDatetime | None = None
    open_to: OpenTo = "member_states"


@catalogue.event("declarations", "declaration", "window_extended", id_field="declaration_id")
class SignatureWindowExtended(DomainEvent):
    """The window closes later (``closes_at``), or never (absent). Never earlier."""

    declaration_id: str
    closes_at: AwareDatetime | None = None
    previous_closes_at: AwareDatetime


# -- state (one State as a signatory) -------------------------------------------------------


@catalogue.event("declarations", "state", "full_powers_recorded", id_field="state")
class FullPowersRecorded(DomainEvent):
    """The organiser saw an instrument of full powers (or credentials saying as much) that
    lets this participant sign the declaration for the State."""

    state: str = Field(description=_STATE)
    declaration_id: str
    participant_id: str
    instrument: str = Field(description="The document seen, as the organiser describes it")


@catalogue.event("declarations", "state", "full_powers_revoked", id_field="state")
class FullPowersRevoked(DomainEvent):
    state: str = Field(description=_STATE)
    declaration_id: str
    participant_id: str
    reason: str


@catalogue.event("declarations", "state", "signed", id_field="state")
class DeclarationSigned(DomainEvent):
    """The State signed. The signatory's name and title are as registration knew them when
    they signed; ``text_sha256`` is the text they were shown."""

    state: str = Field(description=_STATE)
    declaration_id: str
    participant_id: str
    signatory_name: str
    signatory_title: str | None = None
    capacity: Capacity
    language: str = Field(description=_LANGUAGE)
    text_sha256: str = Field(pattern="^[0-9a-f]{64}$", description=_SHA256)
    signed_at: AwareDatetime
    demo: bool = Field(
        default=False, description="Signed by demo data: no State signed this in fact"
    )


@catalogue.event("declarations", "state", "signature_withdrawn", id_field="state")
class SignatureWithdrawn(DomainEvent):
    """The State withdrew its signature; it may sign again later."""

    state: str = Field(description=_STATE)
    declaration_id: str
    signed_at: AwareDatetime = Field(description="When the signature withdrawn was made")
    withdrawn_at: AwareDatetime
    reason: str


# -- participant (as declarations knows them) -----------------------------------------------


@catalogue.event("declarations", "participant", "standing_recorded", id_field="participant_id")
class ParticipantStandingRecorded(DomainEvent):
    """A participant as REGISTRATION's events describe them up to ``registration_sequence``,
    recorded each time something declarations cares about changed."""

    participant_id: str
    name: str
    title: str | None = None
    category: Category
    delegation: str | None = Field(default=None, description=_STATE)
    status: Standing
    registration_sequence: int = Field(
        ge=1, description="The REGISTRATION stream sequence this standing reflects"
    )
