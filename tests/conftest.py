import os

import pytest
import torch

# Two cores: one thread per test process keeps timings sane and results reproducible.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def tiny_cfg():
    from inr_gon.config import Config

    return Config(data="builtin:shapes", height=8, width=8, hidden=16, layers=2, latent_dim=4,
                  steps=6, batch_size=4, lr=1e-3, log_every=2, preview_every=3,
                  checkpoint_every=3, val_fraction=0.25)
