"""Base for every model that crosses the wire: snake_case in Python, camelCase in JSON."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON object as sent: camelCase keys, no nulls."""
        return self.model_dump(mode="json", exclude_none=True)
