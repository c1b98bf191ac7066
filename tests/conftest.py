import os

import pytest
import torch

# Two cores: one thread per test process keeps timings sane and results reproducible.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def tiny_cfg():
    from inr_gon.config import Config

    return Config.of(data="builtin:shapes", height=8, width=8, hidden=16, layers=2, latent_dim=4,
                     steps=6, batch_size=4, lr=1e-3, log_every=2, preview_every=3,
                     checkpoint_every=3, val_fraction=0.25)


@pytest.fixture
def make_run(tmp_path):
    """A run folder with untrained weights, no training: (name, **config fields) -> path."""
    from inr_gon.config import Config
    from inr_gon.models.factory import build_model
    from inr_gon.run import save_config, save_model

    def make(name="run", seed=0, **fields):
        base = dict(data="builtin:shapes", height=8, width=8, hidden=16, layers=3, latent_dim=4)
        cfg = Config.of(**{**base, **fields}).validate()
        torch.manual_seed(seed)
        path = tmp_path / name
        path.mkdir()
        save_config(path, cfg)
        save_model(path, build_model(cfg))
        return path

    return make


@pytest.fixture(autouse=True)
def _sample_cache(tmp_path_factory, monkeypatch):
    """SDF sample caches go to a temporary folder, never to the user's ~/.cache."""
    monkeypatch.setenv("INR_GON_CACHE", str(tmp_path_factory.getbasetemp() / "sdf-cache"))


@pytest.fixture(scope="session")
def mesh_dir(tmp_path_factory):
    """Small meshes in several formats: a sphere (radius 2, centred at (5, 0, 0)), a box, a
    torus; a sphere with a hole lives in open/."""
    import trimesh

    d = tmp_path_factory.mktemp("meshes")
    trimesh.creation.icosphere(3, radius=2.0).apply_translation([5, 0, 0]).export(d / "sphere.ply")
    trimesh.creation.box([1.0, 2.0, 3.0]).export(d / "box.stl")
    trimesh.creation.torus(1.0, 0.3, major_sections=24, minor_sections=12).export(d / "torus.obj")
    return d


@pytest.fixture
def tiny_sdf_cfg():
    from inr_gon.config import Config

    return Config.of(data="builtin:shapes3d:6", hidden=16, layers=2, latent_dim=4, steps=4,
                     batch_size=3, sdf_points=64, sdf_samples=512, lr=1e-3, log_every=2,
                     preview_every=0, checkpoint_every=2, val_fraction=0.34)
