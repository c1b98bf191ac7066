"""Image folders larger than `data_memory` stream from disk: same batches, bounded memory."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from inr_gon.config import Config
from inr_gon.datasets import LazyFolder
from inr_gon.inference.inputs import training_items
from inr_gon.training.tasks import ImageTask, image_task
from inr_gon.training.train import train


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    for i in range(14):
        shape = (10, 12, 3) if i == 5 else (10, 12)  # one colour file among grey ones
        where = root / "sub" if i % 3 == 0 else root
        iio.imwrite(where / f"im{i:02d}.png", rng.integers(0, 256, shape, dtype=np.uint8))
    return root


def cfg_for(folder, **kw):
    base = dict(data=str(folder), height=8, width=8, batch_size=4, hidden=16, layers=2,
                latent_dim=4, steps=6, val_fraction=0.25, log_every=3, preview_every=0,
                checkpoint_every=0)
    return Config.of(**{**base, **kw})


@pytest.mark.parametrize("workers", [0, 1])
def test_streamed_batches_equal_in_memory_batches(folder, workers):
    cpu = torch.device("cpu")
    eager = image_task(cfg_for(folder), cpu)
    lazy = image_task(cfg_for(folder, data_memory=0, data_workers=workers), cpu)
    # one ImageTask class: the streamed one reads a LazyFolder source
    assert isinstance(eager, ImageTask) and isinstance(lazy.data, LazyFolder)
    assert lazy.cfg.summary.channels == eager.cfg.summary.channels == 3
    assert torch.equal(lazy.train_idx, eager.train_idx)
    for step in range(6):
        ce, ve = eager.batch(step)
        cl, vl = lazy.batch(step)
        assert torch.equal(ce, cl) and torch.equal(ve, vl), step
    assert lazy.data.summary()["lazy"] and lazy.data.summary()["count"] == 14


def test_only_the_batch_is_decoded_and_the_cache_is_bounded(folder):
    task = image_task(cfg_for(folder, data_memory=0, data_workers=0), torch.device("cpu"))
    data = task.data
    data.cache_bytes = 3 * data.item_bytes()  # room for three decoded images
    probed = data.decoded  # the channel probe reads the first files once
    task.batch(0)
    assert data.decoded == probed + 4  # one batch: four files
    for step in range(1, 6):
        task.batch(step)
        assert len(data.cache) <= 3 and data.cached_bytes <= data.cache_bytes
    assert data.decoded <= probed + 6 * 4


def test_unreadable_file_gives_way_to_the_next(folder, capsys):
    (folder / "im03.png").write_bytes(b"not a png")
    data = LazyFolder(folder, (8, 8))
    bad = data.names.index("im03.png")
    assert np.array_equal(data.item(bad), data.item(bad + 1))
    assert "skipped unreadable file im03.png" in capsys.readouterr().err


def test_training_on_a_streamed_folder_and_rendering_its_items(folder, tmp_path):
    cfg = cfg_for(folder, data_memory=0, data_workers=1)
    res = train(cfg, tmp_path / "run", quiet=True)
    assert res.step == 6 and np.isfinite(res.train_psnr) and res.val_psnr is not None
    from inr_gon.run import load_config

    saved = load_config(tmp_path / "run")
    assert saved.extra["data"]["lazy"] is True
    names, images = training_items(saved, 3)
    eager_names, eager_images = training_items(saved.replace(extra={}), 3)
    assert names == eager_names and np.array_equal(images, eager_images)
