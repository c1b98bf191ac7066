"""Hostile-input rows for fit, eval, sample, interpolate and the model options (--model conv|ae,
--variational, --detach-inner): the same table format and outcomes as hostile_cases.py.

`run=` picks the trained tiny run copied to {run}: gon (default), conv, ae or vgon (variational).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import hostile_files as hf
import imageio.v3 as iio
import numpy as np
import torch
from hostile_cases import Case, at, folder, on_run, remove, set_tensor, train

from inr_gon.inference.latents import load_latents
from inr_gon.run import load_run

NAN = float("nan")


def fit(*args: str, out: str = "{out}/z.safetensors") -> list[str]:
    return ["fit", "{run}", *args, "--out", out, "--quiet"]


def evaluate(*args: str) -> list[str]:
    return ["eval", "{run}", *args, "--json", "--quiet"]


def sample(*args: str) -> list[str]:
    return ["sample", "{run}", *args, "--out", "{out}", "--quiet"]


def walk(*args: str, out: str = "{out}/walk.gif") -> list[str]:
    return ["interpolate", "{run}", *args, "--out", out, "--quiet"]


AB = ("{d}/a.png", "{d}/b.png")


def pngs(*names: str, h: int = 8, w: int = 8):
    """Good 8x8 d/a.png and d/b.png, and good h x w PNGs at d/name."""
    def build(d: Path) -> None:
        hf.good_png(d / "a.png")
        hf.good_png(d / "b.png")
        for name in names:
            hf.good_png(d / name, h, w)
    return build


def flag_id(command: str, flags: tuple[str, ...]) -> str:
    return "-".join([command, *(f.strip("-") for f in flags)])


def both(*builders):
    def build(d: Path) -> None:
        for b in builders:
            if b is not None:
                b(d)
    return build


def mesh(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")


def out_files(d: Path) -> set[str]:
    return {str(p.relative_to(d / "out")) for p in (d / "out").rglob("*")}


def latents_saved(n: int):
    def check(d: Path) -> None:
        _, z = load_latents(d / "out" / "z.safetensors", 4)
        assert z.shape == (n, 4) and torch.isfinite(z).all()
        assert out_files(d) == {"z.safetensors"}
    return check


def samples_written(n: int, folder: str = "out", side: int = 8):
    def check(d: Path) -> None:
        files = {p.name for p in (d / folder).iterdir()}
        assert files == {f"sample_{i:04d}.png" for i in range(n)} | {"grid.png", "latents.safetensors"}
        assert iio.imread(d / folder / "sample_0000.png").shape[:2] == (side, side)
    return check


def animation(frames: int | None, name: str = "walk.gif"):
    """The file and only it in d/out, with `frames` frames (None: Pillow merges equal frames)."""
    def check(d: Path) -> None:
        walk = iio.imread(d / "out" / name, index=None)
        assert walk.ndim == 4 and frames in (None, walk.shape[0])
        assert out_files(d) == {name}
    return check


def files_in_out(*names: str):
    def check(d: Path) -> None:
        assert out_files(d) == set(names), out_files(d)
    return check


def run_intact(d: Path) -> None:
    assert load_run(d / "run").cfg.net.model == "gon"


def data_gone(d: Path) -> None:
    """The run's training data is no longer where config.json says."""
    hf.edit_json("config.json", data=str(d / "gone.npy"))(d / "run")


def same_name_images(d: Path) -> None:
    for name in ("grid.png", "x.png", "A.png", "a.png"):
        hf.good_png(d / "in" / name)


MP4 = "ok" if importlib.util.find_spec("imageio_ffmpeg") else "error"
BROKEN_RUNS = {  # a run folder that is not a run, or has a missing or corrupted file
    "not-a-run": ("{d}/data", "not a run", folder({})),
    "no-model": ("{run}", "model.safetensors", remove("model.safetensors")),
    "model-garbage": ("{run}", "safetensors", on_run(lambda r: hf.garbage(r / "model.safetensors"))),
    "model-nan": ("{run}", "NaN", on_run(hf.edit_tensors(
        "model.safetensors", set_tensor("", lambda v: torch.full_like(v, NAN))))),
    "config-model-edited": ("{run}", "weights do not match", on_run(hf.edit_json("config.json", model="ae"))),
}
COMMANDS = {  # command -> argv after RUN (good inputs), files it needs
    "fit": (lambda run: ["fit", run, *AB, "--out", "{out}/z.safetensors", "--quiet"], pngs()),
    "eval": (lambda run: ["eval", run, "{d}/a.png", "--json"], pngs()),
    "sample": (lambda run: ["sample", run, "-n", "2", "--out", "{out}", "--quiet"], None),
    "interpolate": (lambda run: ["interpolate", run, *AB, "--out", "{out}/w.gif", "--quiet"], pngs()),
}


def broken_run_rows() -> list[Case]:
    return [Case(f"{cmd}-run-{name}", argv(run), "error", (words,), both(files, damage))
            for cmd, (argv, files) in COMMANDS.items() for name, (run, words, damage) in BROKEN_RUNS.items()]


CASES: list[Case] = [
    # ---- train: the model options
    *[Case(flag_id("train", flags), train("builtin:shapes:8", *flags), "ok",
           count=8) for flags in [("--model", "conv"), ("--model", "ae"), ("--variational",),
                                  ("--detach-inner",), ("--model", "conv", "--detach-inner"),
                                  ("--model", "conv", "--layers", "4"),  # 1x1 base grid, 8 channels
                                  ("--variational", "--kl-weight", "0")]],
    *[Case(flag_id("train", flags), train("builtin:shapes:8", *flags), "error", (w,)) for flags, w in [
        (("--model", "conv", "--layers", "40"), "--layers"),
        (("--model", "conv", "--size", "1", "--layers", "3"), "--layers"),
        (("--model", "conv", "--layers", "4", "--hidden", "1"), "--hidden"),
        (("--model", "conv", "--variational"), "variational"),
        (("--model", "ae", "--variational"), "variational"),
        (("--model", "ae", "--detach-inner"), "detach"),
        (("--model", "ae", "--points-per-signal", "4"), "points-per-signal"),
        (("--variational", "--kl-weight", "nan"), "kl_weight"),
        (("--variational", "--kl-weight", "1e9"), "kl_weight")]],
    Case("resume-model-flag-ignored", ["train", "x", "--resume", "--out", "{run}", "--model", "conv",
                                       "--variational", "--steps", "3", "--quiet"], "warn",
         ("--model", "--variational"), check=run_intact),
    *[Case(f"resume-{kind}", ["train", "x", "--resume", "--out", "{run}", "--steps", "3", "--quiet"],
           "ok", run=kind) for kind in ("conv", "ae", "vgon")],
    # ---- fit: inputs
    Case("fit-ok", fit(*AB, "--refine-steps", "2"), "ok", (), pngs(), check=latents_saved(2)),
    *[Case(f"fit-ok-{kind}", fit(*AB, "--refine-steps", "2"), "ok", (), pngs(), run=kind,
           check=latents_saved(2)) for kind in ("conv", "ae", "vgon")],
    Case("fit-input-npy", fit("{d}/a.npy"), "ok", (), at("a.npy", hf.npy(np.zeros((2, 8, 8), np.uint8))),
         check=latents_saved(2)),  # an array of images, as train and eval read it
    *[Case(f"fit-input-{name}", fit(f"{{d}}/{file}"), "error", (words,), at(file, writer))
      for name, file, writer, words in [
          ("zero-byte", "z.png", lambda p: p.write_bytes(b""), "cannot read image"),
          ("garbage", "g.png", hf.garbage, "cannot read image"),
          ("truncated", "t.png", hf.truncated_png, "cannot read image"),
          ("mesh", "m.obj", mesh, "cannot read image"),
          ("bomb", "bomb.png", hf.bomb_png, "megapixel"),
          ("fifo", "f.png", hf.fifo, "not a regular file"),
          ("empty-folder", "empty", lambda p: p.mkdir(), "no images")]],
    Case("fit-input-missing", fit("{d}/nope.png"), "error", ("no such file",)),
    Case("fit-input-wrong-size", fit("{d}/big.png"), "warn", ("big.png", "resampled"),
         pngs("big.png", h=20, w=30), check=latents_saved(1)),
    Case("fit-input-1x1", fit("{d}/one.png"), "error", ("1x1", "2x2"), pngs("one.png", h=1, w=1)),
    Case("fit-input-16bit-rgba-palette", fit("{d}/g16.png", "{d}/rgba.png", "{d}/p.png"), "ok", (),
         lambda d: (hf.pil("I;16")(d / "g16.png"), hf.pil("RGBA")(d / "rgba.png"), hf.pil("P")(d / "p.png")),
         check=latents_saved(3)),
    Case("fit-input-folder-with-bad", fit("{d}/data"), "warn", ("noise.png",),
         folder({"noise.png": hf.garbage}), check=latents_saved(1)),
    # ---- fit: flags and --out
    *[Case(f"fit{f}={v}", fit(*AB, f, v), "error", (f,), pngs()) for f, v in [
        ("--refine-steps", "-1"), ("--refine-steps", "100000000000000000000"), ("--refine-lr", "0"),
        ("--refine-lr", "nan"), ("--refine-lr", "inf"), ("--refine-lr", "1e38"), ("--backend", "tf")]],
    Case("fit-onnx-not-exported", fit(*AB, "--backend", "onnx"), "error", ("--with-encoder",), pngs()),
    Case("fit-onnx-conv-run", fit(*AB, "--backend", "onnx"), "error", ("only GON",), pngs(), run="conv"),
    Case("fit-device-tpu", fit(*AB, "--device", "tpu"), "error", ("device",), pngs()),
    Case("fit-out-not-safetensors", fit(*AB, out="{out}/z.npy"), "error", (".safetensors",), pngs()),
    Case("fit-out-run-model", fit(*AB, out="{run}/model.safetensors"), "error", ("run's own",), pngs(),
         check=run_intact),
    Case("fit-out-run-state", fit(*AB, out="{run}/train_state.safetensors"), "error", ("run's own",),
         pngs(), check=run_intact),
    Case("fit-out-under-a-file", fit(*AB, out="{d}/f/z.safetensors"), "error", ("cannot write",),
         both(pngs(), at("f", hf.garbage))),
    Case("fit-out-is-a-folder", fit(*AB, out="{d}/dir.safetensors"), "error", ("cannot write",),
         both(pngs(), at("dir.safetensors", Path.mkdir))),
    # ---- eval: DATA of another modality, size or kind
    *[Case(f"eval-data-{name}", evaluate(f"{{d}}/{file}"), "error", (words,), at(file, writer))
      for name, file, writer, words in [
          ("zero-byte", "z.png", lambda p: p.write_bytes(b""), "cannot read image"),
          ("garbage-npy", "g.npy", hf.garbage, "cannot read"),
          ("nan-npy", "n.npy", hf.npy(np.full((2, 8, 8), NAN, np.float32)), "NaN"),
          ("mesh-file", "m.obj", mesh, "mesh"),
          ("mesh-folder", "meshes", lambda p: mesh(p / "m.obj"), "meshes"),
          ("bomb", "bomb.png", hf.bomb_png, "megapixel"),
          ("empty-folder", "empty", lambda p: p.mkdir(), "no images"),
          ("fifo", "f.npy", hf.fifo, "not a regular file")]],
    Case("eval-data-missing", evaluate("{d}/nope.npy"), "error", ("no such file",)),
    Case("eval-data-builtin-unknown", evaluate("builtin:nope"), "error", ("builtin:shapes",)),
    Case("eval-data-other-size", evaluate("{d}/small.npy"), "warn", ("small.npy", "resampled"),
         at("small.npy", hf.npy(np.zeros((3, 5, 5), np.uint8)))),
    Case("eval-data-mixed-sizes", evaluate("{d}/data"), "warn", ("resampled",),
         folder({"big.png": lambda p: hf.good_png(p, 9, 12)})),
    Case("eval-data-folder-with-bad", evaluate("{d}/data"), "warn", ("noise.png",),
         folder({"noise.png": hf.garbage})),
    Case("eval-data-grey-on-rgb", evaluate("{d}/g.npy"), "ok", (), at("g.npy", hf.npy(np.zeros((2, 8, 8))))),
    Case("eval-data-rgba", evaluate("{d}/c.npy"), "ok", (),
         at("c.npy", hf.npy(np.full((2, 8, 8, 4), 9, np.uint8)))),
    *[Case(f"eval-{kind}", evaluate("builtin:shapes:4", "--refine-steps", "1"), "ok", run=kind)
      for kind in ("conv", "ae", "vgon")],
    Case("eval-split-val-own-data", evaluate("builtin:shapes:8", "--split", "val"), "ok"),
    *[Case(f"eval{f}={v}", evaluate("builtin:shapes:4", f, v), "error", (w,)) for f, v, w in [
        ("--limit", "0", "--limit"), ("--limit", "-1", "--limit"), ("--split", "bogus", "--split"),
        ("--split", "val", "--split"), ("--refine-steps", "-1", "--refine-steps"),
        ("--refine-lr", "inf", "--refine-lr")]],
    Case("eval-split-val-data-gone", evaluate("builtin:shapes:8", "--split", "val"), "error",
         ("--split",), data_gone),
    # ---- sample
    *[Case(f"sample{f}={v}", sample(f, v), "error", (w,)) for f, v, w in [
        ("-n", "0", "-n"), ("-n", "-3", "-n"), ("-n", "5000", "-n"), ("--size", "0", "--size"),
        ("--size", "100000", "--size"), ("--size", "8x0", "--size"), ("--prior", "bogus", "--prior"),
        ("--prior", "model", "not variational"), ("--seed", "-1", "--seed"),
        ("--seed", "100000000000000000000000", "--seed"), ("--device", "cuda:7", "cuda")]],
    Case("sample-ok", sample("-n", "3", "--size", "12"), "ok", check=samples_written(3, side=12)),
    *[Case(f"sample-ok-{kind}", sample("-n", "2", "--size", "1"), "ok", run=kind,
           check=samples_written(2, side=1)) for kind in ("conv", "ae", "vgon")],
    Case("sample-ok-vgon-model-prior", sample("-n", "2", "--prior", "model"), "ok", run="vgon",
         check=samples_written(2)),
    Case("sample-default-out", ["sample", "{run}", "-n", "2", "--quiet"], "ok",
         check=samples_written(2, "run/samples")),
    Case("sample-fitted-prior-data-gone", sample("-n", "2"), "error", ("training data",), data_gone),
    Case("sample-out-under-a-file", ["sample", "{run}", "-n", "2", "--out", "{d}/f/s", "--quiet"],
         "error", ("cannot write",), at("f", hf.garbage)),
    # ---- interpolate
    *[Case(f"walk{f}={v}", walk(*AB, f, v), "error", (w,), pngs()) for f, v, w in [
        ("--frames", "0", "--frames"), ("--frames", "-2", "--frames"), ("--frames", "1", "--frames"),
        ("--frames", "100000", "--frames"), ("--fps", "0", "--fps"), ("--fps", "nan", "--fps"),
        ("--fps", "inf", "--fps"), ("--size", "0", "--size"), ("--size", "100000", "--size")]],
    Case("walk-too-many-pixels", walk(*AB, "--frames", "1000", "--size", "1024"), "error",
         ("too much",), pngs()),
    *[Case(f"walk-out-{name}", walk(*AB, out=f"{{out}}/{file}"), "error", (w,), pngs()) for name, file, w in [
        ("avi", "w.avi", ".gif or .mp4"), ("no-extension", "walk", ".gif or .mp4"),
        ("png", "w.png", ".gif or .mp4")]],
    Case("walk-out-mp4", walk(*AB, "--frames", "3", out="{out}/w.mp4"), MP4, ("imageio-ffmpeg",), pngs()),
    Case("walk-out-under-a-file", walk(*AB, out="{d}/f/w.gif"), "error", ("cannot write",),
         both(pngs(), at("f", hf.garbage))),
    Case("walk-out-is-a-folder", walk(*AB, out="{d}/w.gif"), "error", ("cannot write",),
         both(pngs(), at("w.gif", Path.mkdir))),
    *[Case(f"walk-end-{name}", walk(f"{{d}}/{file}", "{d}/b.png"), "error", (w,),
           both(pngs(), at(file, writer)))
      for name, file, writer, w in [
          ("zero-byte", "z.png", lambda p: p.write_bytes(b""), "cannot read image"),
          ("garbage", "g.png", hf.garbage, "cannot read image"),
          ("npy", "a.npy", hf.npy(np.zeros((2, 8, 8), np.uint8)), "an array of images"),
          ("fifo", "f.png", hf.fifo, "not a regular file"),
          ("bomb", "bomb.png", hf.bomb_png, "megapixel"),
          ("folder", "dir", lambda p: hf.good_png(p / "x.png"), "a folder")]],
    Case("walk-end-missing", walk("{d}/nope.png", "{d}/b.png"), "error", ("no such file",), pngs()),
    Case("walk-end-wrong-size", walk("{d}/big.png", "{d}/b.png", "--frames", "3"), "warn",
         ("big.png", "resampled"), pngs("big.png", h=20, w=30), check=animation(3)),
    Case("walk-same-ends", walk("{d}/a.png", "{d}/a.png", "--frames", "3"), "ok", (), pngs(),
         check=animation(None)),
    Case("walk-upper-case-gif", walk(*AB, "--frames", "2", out="{out}/W.GIF"), "ok", (), pngs(),
         check=animation(2, "W.GIF")),
    *[Case(f"walk-ok-{kind}", walk(*AB, "--frames", "4", "--size", "12"), "ok", (), pngs(), run=kind,
           check=animation(4)) for kind in ("conv", "ae", "vgon")],
    # ---- runs of other models: the paths that differ
    Case("render-onnx-ae-run", ["render", "{run}", "--backend", "onnx", "--out", "{out}"], "error",
         ("only GON",), run="ae"),
    *[Case(f"latents-wrong-size-{kind}", ["render", "{run}", "--latents", "{d}/z.safetensors", "--out",
                                          "{out}"], "error", ("dimension",),
           at("z.safetensors", hf.latents(torch.zeros(2, 5))), run=kind) for kind in ("conv", "ae")],
    Case("render-conv-super-size", ["render", "{run}", "-n", "2", "--size", "16", "--out", "{out}",
                                    "--quiet"], "warn", ("bilinear",), run="conv",
         check=files_in_out("grid.png", "shapes_000000.png", "shapes_000001.png")),
    # ---- names that would collide or leave --out
    Case("render-input-npy", ["render", "{run}", "{d}/a.npy", "--out", "{out}", "--quiet"], "ok", (),
         at("a.npy", hf.npy(np.zeros((2, 8, 8), np.uint8))),  # an array of images, as train reads
         check=files_in_out("a_000000.png", "a_000001.png", "grid.png")),
    Case("render-names-collide", ["render", "{run}", "{d}/in", "--out", "{out}", "--quiet"], "ok",
         (), same_name_images,  # at the run's size: nothing resampled, nothing to warn about
         check=files_in_out("grid.png", "grid-1.png", "x.png", "A.png", "a-1.png")),
    Case("latents-names-collide", ["render", "{run}", "--latents", "{d}/z.safetensors", "--out", "{out}",
                                   "--quiet"], "ok", (),
         at("z.safetensors", hf.latents(torch.zeros(5, 4), ["grid", "a", "A", "a-1", "../a"])),
         check=files_in_out("grid.png", "grid-1.png", "a.png", "A-1.png", "a-1-1.png", "_a.png")),
    *broken_run_rows(),
]
