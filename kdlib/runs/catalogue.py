"""Every experiment by name: Section 3's (``kdlib.runs.recipes``) and the studies of chapters 7-9
(``kdlib.runs.studies``), and the one way to build an experiment's run configs."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .studies import CONFIGS as STUDIES
from .recipes import DEFAULT_SEEDS, SECTION_3, RunConfig, budget

EXPERIMENTS: dict[str, Callable] = {**SECTION_3, **STUDIES}


def configs_for(experiment: str, profile: str = "full", seeds=DEFAULT_SEEDS,
                validation: bool = False) -> list[RunConfig]:
    """The run configs of ``experiment`` for ``profile``'s budget and ``seeds`` (on the
    validation split with ``validation``); a bad name, profile or seed is named."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; choose one of {', '.join(EXPERIMENTS)}")
    seeds = list(seeds)
    if not seeds or any(not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of integers >= 0, got {seeds!r}")
    budget(profile)
    return EXPERIMENTS[experiment](profile, [int(s) for s in seeds], validation)
