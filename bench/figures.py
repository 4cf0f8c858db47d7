"""One figure of a benchmark: a measured value beside its limit measured in the same run.

Every speed target is "value <= ratio x limit" (or an absolute bound): a figure carries both numbers so the
table printed at the end says, per line, what was measured, what this machine allows, the ratio and whether
the target holds. Bench modules return lists of figures; bench/run.py prints them together.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str  # what was measured, e.g. "cached launch, request -> ready (median)"
    value: float  # seconds (or the unit below)
    limit: float | None = None  # the same-run baseline the target is relative to (None: absolute target)
    target: float | None = None  # target ratio value/limit, or an absolute bound when limit is None
    unit: str = "s"
    note: str = ""  # how the limit was measured, sample sizes, failures

    @property
    def ratio(self) -> float | None:
        if self.limit is None or self.limit <= 0:
            return None
        return self.value / self.limit

    @property
    def holds(self) -> bool | None:
        if self.target is None:
            return None
        if self.limit is None:
            return self.value <= self.target
        ratio = self.ratio
        return None if ratio is None else ratio <= self.target

    def row(self) -> list[str]:
        ratio = "" if self.ratio is None else f"{self.ratio:.2f}x"
        if self.target is None:
            target = ""
        elif self.limit is None:
            target = f"<= {self.target:g} {self.unit}"
        else:
            target = f"<= {self.target:g}x"
        verdict = {True: "yes", False: "NO", None: ""}[self.holds]
        limit = "" if self.limit is None else f"{self.limit:.3f}"
        return [self.name, f"{self.value:.3f}", limit, ratio, target, verdict, self.note]


HEADER = ["figure", "value", "limit (same run)", "ratio", "target", "holds", "note"]


def table(figures: list[Figure]) -> str:
    """A plain-text table (Markdown-compatible) of the figures."""
    rows = [HEADER] + [f.row() for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
