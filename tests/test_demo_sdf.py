"""`inr-gon demo --shapes` end to end, on a tiny config."""

import functools
import json

from cli_helpers import run_cli

from inr_gon.demos.shapes import run_shapes_demo


def test_shapes_demo_writes_meshes_pictures_and_figures(tiny_sdf_cfg, tmp_path):
    cfg = tiny_sdf_cfg.replace(data="builtin:shapes3d:4", val_fraction=0.25, steps=3)
    f = run_shapes_demo(tmp_path / "demo", quiet=True, cfg=cfg, resolution=16)
    assert f["steps"] == 3 and f["val_items"] == 1
    assert (tmp_path / "demo/demo_heldout.png").is_file()
    saved = json.loads((tmp_path / "demo/demo.json").read_text())
    assert saved["val_iou"] == f["val_iou"] and 0.0 <= f["val_iou"] <= 1.0
    assert len(saved["items"]) == 1 and saved["items"][0]["split"] == "val"
    pictures = list((tmp_path / "demo/demo_meshes").glob("*.png"))
    assert len(pictures) == 1


def test_demo_shapes_from_the_command_line(tiny_sdf_cfg, tmp_path, capsys, monkeypatch):
    """`inr-gon demo --shapes` runs the shapes demo (its recipe shrunk here) and reports it."""
    cfg = tiny_sdf_cfg.replace(data="builtin:shapes3d:4", val_fraction=0.25, steps=2)
    monkeypatch.setattr("inr_gon.cli.demo.run_shapes_demo",
                        functools.partial(run_shapes_demo, cfg=cfg, resolution=16))
    code, out, err = run_cli(capsys, "demo", "--shapes", "--out", tmp_path / "demo", "--quiet")
    assert code == 0, err
    assert out.startswith("demo --shapes: 2 steps") and "IoU" in out
    assert (tmp_path / "demo/demo.json").is_file() and (tmp_path / "demo/demo_heldout.png").is_file()
