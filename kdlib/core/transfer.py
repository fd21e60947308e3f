"""The transfer set a student learns from (Section 3), as a small typed value.

A run's config stores it as text (part of the config hash): ``"all"`` (the training images),
``"drop:3"`` (Section 3: 'omitting all examples of the digit 3'), ``"keep:7,8"`` ('only 7s
and 8s'), ``"subset:0.03"`` (Section 6: 3% of the images, stratified) or ``"specialist:k3g1"``
(Section 5: the enriched set of specialist group 1 of a k = 3 clustering). ``TransferSet.parse``
is the one place that reads that text.
"""
from __future__ import annotations

from dataclasses import dataclass

KINDS = ("all", "drop", "keep", "subset", "specialist")


@dataclass(frozen=True)
class TransferSet:
    """``kind`` (one of ``KINDS``); ``classes`` for drop/keep; ``fraction`` for subset;
    ``clusters`` and ``group`` for a specialist's set."""

    kind: str
    classes: tuple[int, ...] = ()
    fraction: float | None = None
    clusters: int | None = None
    group: int | None = None

    @classmethod
    def parse(cls, text: str) -> "TransferSet":
        kind, _, rest = str(text).partition(":")
        try:
            if kind == "all" and not rest:
                return cls("all")
            if kind in ("drop", "keep"):
                classes = tuple(int(c) for c in rest.split(","))
                if classes and all(0 <= c <= 9 for c in classes):
                    return cls(kind, classes=classes)
            if kind == "subset" and 0 < float(rest) <= 1:
                return cls("subset", fraction=float(rest))
            if kind == "specialist" and rest.startswith("k") and "g" in rest:
                k, g = rest[1:].split("g")
                return cls("specialist", clusters=int(k), group=int(g))
        except ValueError:
            pass
        raise ValueError(f"unknown transfer set {text!r}; use 'all', 'drop:D,..' or 'keep:D,..' "
                         "(digits 0-9), 'subset:F' (0 < F <= 1) or 'specialist:kKgG'")

    def __str__(self) -> str:
        if self.kind in ("drop", "keep"):
            return f"{self.kind}:{','.join(map(str, self.classes))}"
        if self.kind == "subset":
            return f"subset:{self.fraction:g}"
        if self.kind == "specialist":
            return f"specialist:k{self.clusters}g{self.group}"
        return "all"
