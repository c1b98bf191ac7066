"""What the explore page asks of a run, without any web code: its items and their latents, and
decoding any points within a memory budget, one request at a time.

All work on the model runs on one thread of its own (`Space.work`): torch modules and
onnxruntime sessions are not documented as safe for concurrent calls with shared scratch state;
serialising the work keeps the working memory of all requests together within --max-memory (each
is checked against it); and one thread keeps one malloc arena. Measured: 20 concurrent 256x256
views decoded by torch in 20 request threads under a lock took the process from 676 MiB to
3.7 GiB RSS (glibc keeps an arena per thread and frees little of it back to the OS).
The run folder is only read; uploads live in memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from inr_gon.errors import InputError
from inr_gon.export.runtime import onnx_decoder
from inr_gon.models.render import decode_chunked
from inr_gon.oom import is_out_of_memory
from inr_gon.run import Run

BACKENDS = ("torch", "onnx")
MAX_UPLOADS = 32  # uploads kept in memory; the oldest goes first
MIN_CHUNK = 1024  # points per decoder call at the least (models.render.points_per_chunk)
TORCH_SHARE = 3  # the torch path's activations get a third of what is left (see Space.__init__)


class TooBig(InputError):
    """A request that would need more memory than --max-memory allows: HTTP 413."""


@dataclass
class Item:
    """One signal the page can show: a training or held-out item, or an upload."""

    name: str
    split: str  # "train", "held-out" or "upload"
    z: torch.Tensor  # [D] on the CPU
    truth: np.ndarray | None = None  # images: [H, W, C] at the training size
    psnr: float | None = None  # images: reconstruction at the training size against truth
    seconds: float | None = None  # uploads: the fitting time
    refine_steps: int = 0

    def summary(self, index: int) -> dict:
        return {"id": index, "name": self.name, "split": self.split, "psnr": self.psnr,
                "seconds": self.seconds, "refine_steps": self.refine_steps}


Decode = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


class Space:
    """A loaded run, its items, and bounded decoding on one model thread."""

    def __init__(self, run: Run, backend: str = "torch", max_memory: int = 512 * 2**20,
                 decoder: str | None = None) -> None:
        """decoder: an exported file for the onnx backend (default RUN/decoder.onnx)."""
        if backend not in BACKENDS:
            raise InputError(f"--backend must be torch or onnx, got '{backend}'")
        if decoder is not None and backend != "onnx":
            raise InputError("--decoder picks an exported ONNX file: add --backend onnx")
        if max_memory < 2**20:
            raise InputError("--max-memory must be at least 1 MiB")
        self.run, self.backend, self.max_memory = run, backend, max_memory
        self.hidden = run.decoder.out.in_features  # also: InputError for a run without a SIREN
        self.channels = run.decoder.out.out_features
        self.items_lock = threading.Lock()  # uploads change the item list
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="model", initializer=self._mark_worker)
        self.worker_ident: int | None = None
        self.items: list[Item] = []
        self.uploads = 0  # how many were ever added, for unique names
        self.loading = False  # the gallery is being encoded (in a thread: the page comes up first)
        self.note: str | None = None  # why the gallery is empty, shown on the page
        # decode_chunked sizes its slices for about four [points, hidden] tensors; a latent-grid
        # model holds more (measured: peak RSS 2.3-2.7x the budget at 64-512 MiB, hidden 256,
        # 4x4 grid), so torch gets a third. onnxruntime's CPU slices are a few MiB whatever the budget.
        self._decode: Decode = (onnx_decoder(run, decoder, quiet=True) if backend == "onnx"
                                else lambda c, z, mem: decode_chunked(run.decoder, c, z, mem // TORCH_SHARE))

    @property
    def modality(self) -> str:
        return self.run.cfg.summary.modality

    def _mark_worker(self) -> None:
        self.worker_ident = threading.get_ident()

    def work(self, fn: Callable[[], object]) -> object:
        """fn() on the model thread, waiting for it (directly when already there)."""
        if threading.get_ident() == self.worker_ident:
            return fn()
        return self.worker.submit(fn).result()

    def load_in_background(self, loader: Callable[[Space, int], str | None], n: int) -> Future:
        """loader(self, n) (a gallery) on the model thread, queued before any request; `loading`
        is True until it ends. Its failure becomes the page's note, never the server's end."""
        self.loading = True

        def load() -> None:
            try:
                self.note = loader(self, n)
            except Exception as e:  # noqa: BLE001 - a bug or a bad file: said on the page, never fatal
                self.note = f"the gallery could not be loaded ({type(e).__name__}: {e})"
            finally:
                self.loading = False

        return self.worker.submit(load)

    def item(self, index: int) -> Item:
        if not 0 <= index < len(self.items):
            raise InputError(f"no item {index}: there are {len(self.items)}")
        return self.items[index]

    def add_upload(self, item: Item) -> int:
        """Append an upload (dropping the oldest beyond MAX_UPLOADS); its index."""
        with self.items_lock:
            uploads = [i for i, it in enumerate(self.items) if it.split == "upload"]
            if len(uploads) >= MAX_UPLOADS:  # ids of later items shift: the page reloads the list
                del self.items[uploads[0]]
            self.items.append(item)
            self.uploads += 1
            return len(self.items) - 1

    def check_memory(self, what: str, fixed: int, points: int = 0, batch: int = 1) -> int:
        """TooBig unless `fixed` bytes (outputs, coordinates) plus the smallest decoder call fit
        in --max-memory; the bytes left for activations."""
        need = fixed + (16 * self.hidden * min(points, MIN_CHUNK) * batch if points else 0)
        if need > self.max_memory:
            raise TooBig(f"{what} needs about {need / 2**20:.0f} MiB, over --max-memory "
                         f"{self.max_memory / 2**20:.0f} MiB: ask for fewer pixels or points")
        return self.max_memory - fixed

    def decode(self, coords: torch.Tensor, z: torch.Tensor, what: str) -> np.ndarray:
        """F(coords, z): coords [N, d] shared by latents z [B, D] -> values [B, N, C] float32,
        refused with TooBig beforehand if it would not fit in --max-memory."""
        n, b = coords.shape[0], z.shape[0]
        # the values, their clipped copy and the 8-bit image with its PNG: about 3 float copies
        budget = self.check_memory(what, coords.numel() * 4 + 3 * n * b * self.channels * 4, n, b)
        return self.work(lambda: self._decode_now(coords, z, budget, what))

    def _decode_now(self, coords: torch.Tensor, z: torch.Tensor, budget: int, what: str) -> np.ndarray:
        try:
            out = self._decode(coords, z.to(self.run.device), budget)
        except (MemoryError, RuntimeError) as e:
            if not is_out_of_memory(e):
                raise
            raise TooBig(f"{what} ran out of memory: lower --max-memory or ask for less") from None
        return out.numpy() if isinstance(out, torch.Tensor) else out
