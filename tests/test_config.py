import json

import pytest

from inr_gon.config import Config
from inr_gon.errors import InputError
from inr_gon.models.factory import check_config


def test_json_round_trip():
    cfg = Config.of(height=20, width=30, variational=True, extra={"data": {"count": 3}})
    assert Config.from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize("field,value", [
    ("height", 0), ("width", -4), ("lr", 0.0), ("layers", 0), ("channels", 2),
    ("val_fraction", 1.0), ("model", "mlp"), ("steps", -1), ("w0", -1.0),
])
def test_out_of_range_names_the_field(field, value):
    with pytest.raises(InputError, match=field):
        Config.from_dict({**Config().to_dict(), field: value})


@pytest.mark.parametrize("raw,field", [
    ({"height": "32"}, "height"), ({"variational": 1}, "variational"), ({"lr": True}, "lr"),
    ({"bogus": 1}, "bogus"), ({"extra": []}, "extra"),
])
def test_wrong_type_or_unknown_key_names_the_field(raw, field):
    with pytest.raises(InputError, match=field):
        Config.from_dict(raw)


def test_not_json():
    with pytest.raises(InputError, match="JSON"):
        Config.from_json("{nope")
    with pytest.raises(InputError, match="object"):
        Config.from_dict(json.loads("[1, 2]"))


@pytest.mark.parametrize("fields,words", [
    ({"modulation": "some"}, "modulation"), ({"origin_step": "newton"}, "origin_step"),
    ({"latent_grid": -1}, "latent_grid"), ({"latent_grid": 65}, "latent_grid"),
    ({"latent_grid": 9, "height": 8, "width": 16}, "larger than the 16x8"),
    ({"latent_grid": 8, "latent_dim": 65}, "4096 limit"),
    ({"origin_step": "learned", "variational": True}, "--variational"),
    ({"origin_step": "gauss-newton", "model": "ae"}, "--model gon"),
    ({"latent_grid": 2, "model": "conv"}, "conv"),
])
def test_issue12_fields_are_validated(fields, words):
    with pytest.raises(InputError, match=words):
        check_config(Config.of(**fields))


def test_latent_size_counts_the_grid():
    assert Config.of(latent_dim=16).latent_size == 16
    assert Config.of(latent_dim=16, latent_grid=4).latent_size == 256
    assert Config.of(latent_dim=16, latent_grid=4, modality="sdf", channels=1).latent_size == 1024
