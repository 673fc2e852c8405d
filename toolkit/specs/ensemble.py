"""EnsembleSpec: what one ensemble kernel is (its members, their weights, whether it predicts, the user's
template), as the registry keeps it beside training runs' RunSpecs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EnsembleSpec:
    competition: str = ""
    members: list[str] = field(default_factory=list)  # "slug/version" of each member
    weights: list[float] | None = None
    predict: bool = False
    template: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = {f.name for f in dataclasses.fields(EnsembleSpec)}
