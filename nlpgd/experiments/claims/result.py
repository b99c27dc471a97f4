"""What one claims experiment's ``analyse`` returns: :class:`ExperimentResult`.

Its fields are the keys of the experiment's ``results.json`` (:meth:`ExperimentResult.to_dict`,
in the same order). ``analyse`` fills the first eleven; the runner adds the run's notes, the
wall time, the pairs and reference rows, and the Holm summary of the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class ExperimentResult:
    """One experiment's numbers and verdict (pure data: saved predictions in, this out)."""

    experiment: str  # the experiment's NAME, e.g. "learning-curve"
    title: str
    claim: str
    metric: str  # the metric the verdict rests on
    verdict: dict  # report.verdict.verdict(...): the line, the text, the verdict by pair
    findings: list[dict]  # every comparison (measure.finding), primary and secondary
    key_numbers: str  # one line of the numbers behind the verdict
    tables: list[dict] = field(default_factory=list)  # {"title", "headers", "rows"}
    figures: list[dict] = field(default_factory=list)  # figure data, drawn by report.figures
    notes: list[str] = field(default_factory=list)
    method: str = ""
    # set by the runner once every experiment of the run is analysed
    wall_seconds: float | None = None
    pairs: list[dict] = field(default_factory=list)
    reference: list[str] = field(default_factory=list)
    holm: dict | None = None

    @classmethod
    def of(cls, values: dict[str, Any]) -> ExperimentResult:
        """The result from a mapping of its fields (a key that is not a field is an error)."""
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"ExperimentResult has no field {', '.join(sorted(unknown))}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The ``results.json`` form: every field, in declaration order (shallow: the findings
        are the same dicts, so a Holm pass over the dicts marks these findings too)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
