"""Figures the reliability suites measure (kills survived, inputs tried, files lost).

The tests assert on these numbers; when INR_GON_FIGURES names a folder (as
benchmarks/reliability.py sets it) they are also written there, one JSON line per record,
so the published table comes from an actual run of the suites.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def record(suite: str, **figures) -> None:
    folder = os.environ.get("INR_GON_FIGURES")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    with open(Path(folder) / f"{suite}.jsonl", "a") as f:
        f.write(json.dumps(figures, default=str) + "\n")
