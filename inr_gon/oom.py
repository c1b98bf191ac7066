"""Out of memory during training, rendering or meshing: one line (exit 1), never a traceback.

torch reports an exhausted GPU as torch.OutOfMemoryError, an exhausted CPU allocator as a
RuntimeError ("DefaultCPUAllocator: can't allocate memory ..."); numpy and Python raise
MemoryError. `guard` turns each into OutOfMemory, whose message the caller writes: what ran out,
what is safe (the last checkpoint) and the flag that lowers memory.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator

import torch

from inr_gon.errors import one_line


class OutOfMemory(Exception):
    """The work needs more memory than there is: the CLI prints one `error:` line, exit 1."""

    def __str__(self) -> str:
        return one_line(super().__str__())


def is_out_of_memory(e: BaseException) -> bool:
    if isinstance(e, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def what_ran_out(e: BaseException) -> str:
    """'GPU memory (1.50 GiB asked for)', 'CPU memory (412.00 GiB asked for)', ..."""
    text = str(e)
    gpu = isinstance(e, torch.OutOfMemoryError) or "CUDA" in text or "MPS" in text
    where = "GPU memory" if gpu else "CPU memory"
    m = re.search(r"[Tt]ried to allocate ([\d.]+) ?(bytes|[KMGT]iB)", text)
    if not m:
        m = re.search(r"allocate ([\d.]+) ?([KMGT]iB)", text)  # numpy: "Unable to allocate 4.0 GiB"
    if not m:
        return where
    amount, unit = float(m.group(1)), m.group(2)
    if unit == "bytes":
        amount, unit = _human(amount)
    return f"{where} ({amount:.2f} {unit} asked for)"


def _human(n: float) -> tuple[float, str]:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024:
            return n, unit
        n /= 1024
    return n, "TiB"


@contextlib.contextmanager
def guard(message: Callable[[str], str]) -> Iterator[None]:
    """Inside the block, running out of memory raises OutOfMemory(message(what ran out))."""
    try:
        yield
    except (MemoryError, RuntimeError) as e:  # torch.OutOfMemoryError is a RuntimeError
        if not is_out_of_memory(e):
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # give the memory back before anything else runs
        raise OutOfMemory(message(what_ran_out(e))) from None
