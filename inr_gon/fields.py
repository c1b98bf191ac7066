"""How a config field is declared and checked: `knob` (default, one-line doc, valid values),
the checks of the fields' values and types, and the parsers of the fields written as text
(observe scales, durations). config.py declares the fields with these."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import field
from typing import Any

from inr_gon.errors import InputError
from inr_gon.limits import MAX_OBSERVE_SCALE


def interval(text: str) -> tuple[float, float, bool, bool]:
    """"[0, 1)" -> (0, 1, closed low, open high); numbers may be written 2**40."""
    m = re.fullmatch(r"([\[(])\s*(\S+)\s*,\s*(\S+)\s*([\])])", text)
    if not m:
        raise ValueError(f"bad bounds {text!r}")
    num = lambda s: int(s.split("**")[0]) ** int(s.split("**")[1]) if "**" in s else float(s)  # noqa: E731
    return num(m.group(2)), num(m.group(3)), m.group(1) == "[", m.group(4) == "]"


def knob(default: Any, doc: str, *, bounds: str | None = None, choices: tuple | None = None,
         pattern: str | None = None, check: Callable[[Any], bool] | None = None,
         cli: bool = True) -> Any:
    """A config field: default, one-line doc, and what values are valid.
    bounds: an interval such as "[0, 1)" or "(0, 1e4]"; cli=False: not a `train` option."""
    meta = {"help": doc, "bounds": interval(bounds) if bounds else None, "choices": choices,
            "pattern": pattern, "check": check, "cli": cli}
    return field(default=default, metadata=meta)


def noise_ok(text: str) -> bool:
    try:
        scales = [float(x) for x in text.split(",")]
    except ValueError:
        return False
    return 1 <= len(scales) <= 8 and all(0.0 < x < 1.0 for x in scales)


def scale_spans(text: str) -> list[tuple[float, float]]:
    """"2,4" -> [(2, 2), (4, 4)]; "1-4" -> [(1, 4)]: the factor of each view a batch encodes,
    fixed, or a span that every step draws a factor from (uniformly; a local model only)."""
    spans = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        spans.append((float(lo), float(hi or lo)))
    return spans


def observe_scales(text: str) -> list[int]:
    """"1,2,4" -> [1, 2, 4]: whole box-downsampling factors, as a GON's views need.
    ValueError for a span or a fraction."""
    spans = scale_spans(text)
    if any(lo != hi or lo != int(lo) for lo, hi in spans):
        raise ValueError(f"not whole factors: {text!r}")
    return [int(lo) for lo, _ in spans]


def check_box_views(text: str, size: tuple[int, int]) -> None:
    """A GON's views are whole boxes of pixels: whole factors that divide the size (H, W)."""
    try:
        scales = observe_scales(text)
    except ValueError:
        raise InputError(f"--observe-scales {text}: spans and fractional factors are for "
                         "--model local (a GON's view is whole boxes of pixels)") from None
    (h, w), bad = size, [s for s in scales if size[0] % s or size[1] % s]
    if bad:
        raise InputError(f"--observe-scales {bad[0]} does not divide the training size {w}x{h}")


def scales_ok(text: str) -> bool:
    try:
        spans = scale_spans(text)
    except ValueError:
        return False
    return 1 <= len(spans) <= 8 and len(set(spans)) == len(spans) and all(
        1 <= lo <= hi <= MAX_OBSERVE_SCALE for lo, hi in spans)


def duration_seconds(text: str) -> float:
    """"90s", "20m", "1h30m", "45" (seconds) -> seconds; "0" -> 0 (no limit)."""
    parts = re.findall(r"(\d+(?:\.\d+)?)([smh]?)", text.strip().lower())
    if not parts or "".join(n + u for n, u in parts) != text.strip().lower().replace(" ", ""):
        raise ValueError(f"not a duration: {text!r} (want e.g. 90s, 20m, 1h)")
    return sum(float(n) * {"": 1, "s": 1, "m": 60, "h": 3600}[u] for n, u in parts)


def duration_ok(text: str) -> bool:
    try:
        return 0 <= duration_seconds(text) <= 10**7
    except ValueError:
        return False


def path_ok(text: str) -> bool:
    return 0 < len(text) <= 4096 and "\x00" not in text


def valid_value(f: dataclasses.Field, value: Any) -> bool:
    meta = f.metadata
    if meta["choices"] is not None and value not in meta["choices"]:
        return False
    if meta["pattern"] is not None and re.fullmatch(meta["pattern"], value) is None:
        return False
    if meta["check"] is not None and not meta["check"](value):
        return False
    if meta["bounds"] is not None:
        lo, hi, lo_closed, hi_closed = meta["bounds"]
        if not ((lo <= value if lo_closed else lo < value) and (value <= hi if hi_closed else value < hi)):
            return False
    return True


def check_extra(extra: dict) -> None:
    """`extra` is bookkeeping (package version, data summary): JSON only, of the known kinds."""
    kinds = {"version": str, "data": dict}
    for key, kind in kinds.items():
        if key in extra and not isinstance(extra[key], kind):
            raise InputError(f"config field 'extra.{key}' has the wrong type: {extra[key]!r:.60} "
                             f"(want {kind.__name__})")
    try:
        json.dumps(extra, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        raise InputError(f"config field 'extra' is not plain JSON ({e})") from None


def typed_value(name: str, f: dataclasses.Field, value: Any) -> Any:
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
    }.get(kind, isinstance(value, dict))
    if not ok:
        raise InputError(f"config field '{name}' has the wrong type: {value!r} (want {kind})")
    return float(value) if kind == "float" else value
