"""The two kinds of signal a run learns, as facts in one table: config.json's `modality`
names a row, and code asks `cfg.modality.coord_dim` (or `.shared_grid`, `.noun`, ...) instead
of branching on the name. What a kind of signal *does* (its batches, scores and previews) is
its task's (training/tasks.py, training/sdf.py); this module holds what the code below and
beside the task (config, export, explore, the CLI) needs to know without one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Modality:
    name: str  # config.json's "modality"
    coord_dim: int  # coordinates of a point: (x, y) or (x, y, z)
    noun: str  # one signal of this kind, in messages
    # Every signal lies on one pixel grid (images): a latent grid is bounded by it, views are
    # box-downsamplings of it, and the one-step encoder is affine in the values on it.
    shared_grid: bool
    points_field: str  # the option that sets the points a signal gives each step
    channels: int  # values per point; 0: the data's (1 or 3 for images)

    def out_dim(self, data_channels: int) -> int:
        """Values the decoder returns per point."""
        return self.channels or data_channels

    def grid_text(self, side: int) -> str:
        """A latent grid side as --latent-grid is written: GxG, or GxGxG for shapes."""
        return "x".join([str(side)] * self.coord_dim)


IMAGE = Modality("image", 2, "image", shared_grid=True,
                 points_field="points_per_signal", channels=0)
SDF = Modality("sdf", 3, "shape (SDF)", shared_grid=False,
               points_field="sdf_points", channels=1)
MODALITIES = {m.name: m for m in (IMAGE, SDF)}
