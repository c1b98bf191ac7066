"""Optional TensorBoard logging (`train --tensorboard`): loss, PSNR and lr scalars and the
preview pictures, in RUN/tensorboard/ (view with `tensorboard --logdir RUN`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inr_gon.errors import InputError

INSTALL = 'pip install "inr-gon[tensorboard]"'


def require() -> None:
    """InputError at once when the optional package is missing, before anything is written."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        raise InputError(f"--tensorboard needs the tensorboard package: {INSTALL}") from None


class TensorBoard:
    def __init__(self, run_dir: Path, start: int = 0) -> None:
        try:  # lazily: an optional extra; torch.utils.tensorboard needs the tensorboard package
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise InputError(f"--tensorboard needs the tensorboard package: {INSTALL}") from None
        # purge_step: a resumed run drops events logged after its checkpoint, as metrics.jsonl does
        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"),
                                    purge_step=start or None)

    def scalars(self, record: dict) -> None:
        """One metrics.jsonl record: every number but the step, under train/."""
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"train/{key}", value, record["step"])

    def image(self, tag: str, picture: np.ndarray, step: int) -> None:
        """picture: float [H, W, C] in [0, 1]."""
        self.writer.add_image(tag, np.clip(picture, 0, 1), step, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()
