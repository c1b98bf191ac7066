"""The facts of each kind of signal (inr_gon/modality.py), as the config and the run read them."""

import pytest

from inr_gon.config import FIELDS, Config
from inr_gon.errors import InputError
from inr_gon.inference.mesh import mesh_run
from inr_gon.inference.shape_eval import evaluate_shapes
from inr_gon.modality import IMAGE, MODALITIES, SDF
from inr_gon.run import load_run


def test_the_config_reads_its_kind_from_the_table():
    rgb, grey = Config.of(channels=3), Config.of(channels=1)
    shape = Config.of(modality="sdf", channels=1)
    assert rgb.modality is IMAGE and shape.modality is SDF
    assert (rgb.coord_dim, rgb.out_dim, grey.out_dim) == (2, 3, 1)
    assert (shape.coord_dim, shape.out_dim) == (3, 1)
    assert Config.of(modality="sdf", channels=3).out_dim == 1  # a distance, whatever was stored


def test_every_kind_names_a_real_points_option_and_writes_its_grid_as_the_flag_does():
    assert set(MODALITIES) == {"image", "sdf"}
    assert all(m.points_field in FIELDS for m in MODALITIES.values())
    assert (IMAGE.grid_text(4), SDF.grid_text(6)) == ("4x4", "6x6x6")


def test_only_images_bound_the_latent_grid_by_their_size():
    Config.of(modality="sdf", channels=1, height=8, width=8, latent_grid=9, latent_dim=4).validate()
    with pytest.raises(InputError, match="larger than the 8x8 images"):
        Config.of(height=8, width=8, latent_grid=9, latent_dim=4).validate()


def test_shape_commands_refuse_an_image_run_in_one_line(make_run, tmp_path):
    run = load_run(make_run(), "cpu")
    for call in (lambda: mesh_run(run, [], tmp_path / "out"), lambda: evaluate_shapes(run, "x")):
        with pytest.raises(InputError, match="is an image run: .* needs an SDF run"):
            call()
    assert not (tmp_path / "out").exists()
