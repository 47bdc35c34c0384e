"""What a CDS Client tells us about our cards (CDS Hooks 2.0 §Feedback), and what we showed.

The feedback models reject what the specification forbids, so the store only ever sees
well-formed outcomes: a clinician's accepted suggestion and an override reason cannot be
mixed up in the alert-fatigue report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, Field, field_validator, model_validator

from cds_service.wire import WireModel

# Bounds on what a client may ask the store to keep. Identifiers echo ours (uuids, codes), so 255 leaves
# room for any client's; an indexed PostgreSQL column fails past about 2.7 KB, and a ten-megabyte value
# slows every later SQLite insert. The schema's column sizes are built from these.
MAX_ID_LENGTH = 255
MAX_URI_LENGTH = 1024
MAX_DISPLAY_LENGTH = 1024
MAX_COMMENT_LENGTH = 4000
MAX_ACCEPTED_SUGGESTIONS = 20
MAX_FEEDBACK_ITEMS = 100


def _storable_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL; refusing it here keeps the store from failing on it (a 500)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _storable_time(value: datetime) -> datetime:
    """A time with an offset that moves it outside years 1 to 9999 in UTC cannot be stored."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None
    return value


# The length is checked before the content, so a ten-megabyte value is refused without being scanned.
Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH), AfterValidator(_storable_text)]
Uri = Annotated[str, Field(max_length=MAX_URI_LENGTH), AfterValidator(_storable_text)]
Display = Annotated[str, Field(max_length=MAX_DISPLAY_LENGTH), AfterValidator(_storable_text)]
Comment = Annotated[str, Field(max_length=MAX_COMMENT_LENGTH), AfterValidator(_storable_text)]


class Coding(WireModel):
    """A coded override reason, as offered in the card's ``overrideReasons``."""

    code: Identifier
    system: Uri | None = None
    display: Display | None = None


class AcceptedSuggestion(WireModel):
    """The ``uuid`` of a suggestion the clinician accepted (sent as ``id``)."""

    id: Identifier


class OverrideReasonFeedback(WireModel):
    """Why the clinician dismissed the card: a chosen reason, free text, or both."""

    reason: Coding | None = None
    user_comment: Comment | None = None


class FeedbackItem(WireModel):
    """One clinician action on one card.

    ``acceptedSuggestions`` is not required for an accepted outcome: a card without
    suggestions can still be accepted, and refusing such feedback would lose it.
    """

    card: Identifier = Field(description="The uuid of the card acted on.")
    outcome: Literal["accepted", "overridden"]
    accepted_suggestions: (
        Annotated[list[AcceptedSuggestion], Field(max_length=MAX_ACCEPTED_SUGGESTIONS)] | None
    ) = None
    override_reason: OverrideReasonFeedback | None = None
    outcome_timestamp: Annotated[AwareDatetime, AfterValidator(_storable_time)]
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _details_match_outcome(self) -> FeedbackItem:
        if self.accepted_suggestions is not None and self.outcome != "accepted":
            raise ValueError("acceptedSuggestions is only allowed when outcome is 'accepted'")
        if self.override_reason is not None and self.outcome != "overridden":
            raise ValueError("overrideReason is only allowed when outcome is 'overridden'")
        return self


class FeedbackRequest(WireModel):
    """The body POSTed to ``/cds-services/{id}/feedback``."""

    feedback: list[FeedbackItem] = Field(min_length=1)

    @field_validator("feedback", mode="before")
    @classmethod
    def _bounded_item_count(cls, value: Any) -> Any:
        """Counted before the items are read, so 50,000 of them are refused at once."""
        if isinstance(value, list) and len(value) > MAX_FEEDBACK_ITEMS:
            raise ValueError(f"at most {MAX_FEEDBACK_ITEMS} items per request, not {len(value)}")
        return value


@dataclass(frozen=True)
class ShownCard:
    """A card this service returned, kept so feedback can be traced to its topic.

    Holds no patient data: only what the report needs, and for a card a clinician can silence for a patient
    a keyed hash that finds the patient's earlier cards but cannot be turned back into the patient's id.
    """

    uuid: str
    topic: str
    indicator: str
    shown_at: datetime
    patient_key: str | None = None  # a keyed hash, only for a topic a clinician can silence


@dataclass(frozen=True)
class OverrideOnRecord:
    """An override reason that silences ``topic`` for a patient when given on or after ``since``."""

    topic: str
    code: str
    system: str
    since: datetime
