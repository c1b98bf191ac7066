"""The hostile-input table: one row per kind of bad (or merely odd) input to the command line.

A row is a command line with placeholders, the files to create first, and the outcome:
  error  exit 2 and one `error:` line (after any `warning:` lines) holding `words`; no traceback,
         and no output folder left behind
  warn   exit 0 and a `warning:` line holding `words` (it names the file that was skipped)
  ok     exit 0: odd but valid input
  usage  exit 2 and one `error:` line from the argument parser itself (it names the option)
  perm   a chmod-000 file or folder `data/<words[0]>`: used where the test can still read it
         (root can), else skipped with a warning naming it
Placeholders: {d} the case folder, {run} a copy of a trained tiny run at {d}/run (of the kind
`run` names), {out} a fresh output path. To extend the suite, append rows (here, or in
hostile_commands.py for fit/eval/sample/interpolate); `files` builds the inputs in the case folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import hostile_files as hf
import numpy as np
import torch


@dataclass
class Case:
    id: str
    argv: list[str]
    expect: str
    words: tuple[str, ...] = ()
    files: Callable[[Path], None] | None = None
    count: int | None = None  # items a successful `train` row trained on
    check: Callable[[Path], None] | None = None  # further assertions on the case folder
    run: str = "gon"  # the trained run copied to {run}: gon, conv, ae or vgon (RUN_FLAGS)


RUN_FLAGS = {"gon": [], "conv": ["--model", "conv"], "ae": ["--model", "ae"], "vgon": ["--variational"]}
TRAIN = ["--out", "{out}", "--size", "8", "--steps", "2", "--batch-size", "2", "--hidden", "8",
         "--layers", "2", "--latent-dim", "4", "--preview-every", "0", "--device", "cpu", "--quiet"]


def train(data: str = "{d}/data", *flags: str) -> list[str]:
    return ["train", data, *TRAIN, *flags]


def render(*args: str) -> list[str]:
    return ["render", "{run}", *args, "--out", "{out}", "--quiet"]


def resume(*flags: str) -> list[str]:
    return ["train", "x", "--resume", "--out", "{run}", "--quiet", *flags]


def at(rel: str, writer: Callable[[Path], None]) -> Callable[[Path], None]:
    def build(d: Path) -> None:
        path = d / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        writer(path)
    return build


def folder(entries: dict[str, Callable[[Path], None]], good: int = 1) -> Callable[[Path], None]:
    """d/data holding `good` valid images and the given odd entries."""
    def build(d: Path) -> None:
        for i in range(good):
            hf.good_png(d / "data" / f"good{i}.png")
        (d / "data").mkdir(exist_ok=True)
        for name, writer in entries.items():
            writer(d / "data" / name)
    return build


def on_run(writer: Callable[[Path], None]) -> Callable[[Path], None]:
    return lambda d: writer(d / "run")


def put(name: str, data: bytes) -> Callable[[Path], None]:
    return on_run(lambda r: (r / name).write_bytes(data))


def remove(name: str) -> Callable[[Path], None]:
    return on_run(lambda r: (r / name).unlink())


def make_dir(name: str) -> Callable[[Path], None]:
    """name, a file of the run, replaced by a folder."""
    def build(run: Path) -> None:
        (run / name).unlink()
        (run / name).mkdir()
    return on_run(build)


def single(name: str, writer, expect: str, *words: str, count: int | None = None) -> Case:
    """One file as DATA."""
    return Case(f"file-{name}", train(f"{{d}}/{name}"), expect, words, at(name, writer),
                count if count is not None else (1 if expect == "ok" else None))


def in_folder(id: str, name: str, writer, expect: str = "warn", *words: str, count: int = 1) -> Case:
    """One odd entry beside a good image in a DATA folder."""
    return Case(f"folder-{id}", train(), expect, words or (name,), folder({name: writer}), count)


def sub_locked(path: Path) -> None:
    hf.good_png(path / "inside.png")
    hf.locked(path)


def mkdir_with_image(path: Path) -> None:
    hf.good_png(path / "inner.png")


def loop_dir(path: Path) -> None:
    path.mkdir()
    (path / "loop").symlink_to("..")


def first(t: dict, suffix: str = "") -> str:
    return next(k for k in sorted(t) if k.endswith(suffix))


def set_tensor(suffix: str, value: Callable[[torch.Tensor], torch.Tensor | None]):
    def change(t: dict, m: dict):
        k = first(t, suffix)
        new = value(t[k])
        if new is None:
            t.pop(k)
        else:
            t[k] = new
        return t, m
    return change


def meta(**changes: str):
    return lambda t, m: (t, {**m, **changes})


def add_tensor(t: dict, m: dict):
    return {**t, "bogus.weight": torch.zeros(2)}, m


def stale_temps(run: Path) -> None:
    (run / ".model.safetensors.ab12cd34.tmp").write_bytes(b"half a checkpoint")
    (run / "previews").mkdir(exist_ok=True)
    (run / "previews" / ".step_000002.png.zz99yy88.tmp").write_bytes(b"half a png")


def previews_file(run: Path) -> None:
    shutil.rmtree(run / "previews")
    hf.garbage(run / "previews")


def no_temps(d: Path) -> None:
    assert not list((d / "run").rglob("*.tmp"))


def extra_files(run: Path) -> None:
    for name in ("notes.txt", ".DS_Store", "model.pt", "random.safetensors", "decoder.onnx"):
        hf.garbage(run / name)
    (run / "subfolder").mkdir()
    hf.garbage(run / "subfolder" / "x.bin")


def only_inside_out(d: Path) -> None:
    assert all(p.parent == d / "out" for p in (d / "out").iterdir())
    assert not (d / "x.png").exists() and not Path("/tmp/hostile-abs.png").exists()


NAN, INF = float("nan"), float("inf")
Z = torch.zeros(2, 4)
LOOP = "loopa.png"

CASES: list[Case] = [
    # ---- one image file as DATA: unreadable -> one error line; odd but valid -> trains
    single("zero.png", lambda p: p.write_bytes(b""), "error", "cannot read image"),
    single("truncated.png", hf.truncated_png, "error", "cannot read image"),
    single("garbage.jpg", hf.garbage, "error", "cannot read image"),
    single("text.png", lambda p: p.write_text("hello, not a picture"), "error", "cannot read image"),
    single("png-named.jpg", hf.good_png, "ok"),
    single("jpeg-named.png", hf.pil("RGB", "JPEG"), "ok"),
    single("notes.txt", hf.garbage, "error", "unsupported file type"),
    single("no-extension", hf.good_png, "error", "unsupported file type"),
    single("one-pixel.png", lambda p: hf.good_png(p, 1, 1), "ok"),
    single("long-strip.png", lambda p: hf.good_png(p, 1, 3000), "ok"),
    single("grey16.png", hf.pil("I;16"), "ok"),
    single("rgb16.png", hf.png16_rgb, "ok"),
    single("palette.png", hf.pil("P"), "ok"),
    single("palette-transparent.png", hf.pil("P", transparent=True), "ok"),
    single("rgba.png", hf.pil("RGBA"), "ok"),
    single("grey-alpha.png", hf.pil("LA"), "ok"),
    single("one-bit.png", hf.pil("1"), "ok"),
    single("cmyk.jpg", hf.pil("CMYK", "JPEG"), "ok"),
    single("ycbcr.jpg", hf.pil("YCbCr", "JPEG"), "ok"),
    single("animated.gif", hf.animated("GIF"), "ok"),
    single("animated.png", hf.animated("PNG"), "ok"),
    single("animated.webp", hf.animated("WEBP"), "ok"),
    single("pages.tif", hf.tiff(np.zeros((3, 6, 6, 3), np.uint8)), "ok"),
    single("u16.tif", hf.tiff(np.arange(36, dtype=np.uint16).reshape(6, 6)), "ok"),
    single("nan.tif", hf.tiff(np.full((6, 6), np.nan, np.float32)), "error", "NaN"),
    single("bomb.png", hf.bomb_png, "error", "megapixel"),
    single("bomb16.png", hf.bomb_png16, "error", "megapixel"),
    single("bomb.tif", hf.bomb_tiff, "error", "megapixel"),
    single("bomb.gif", hf.bomb_gif, "error", "megapixel"),
    single("fifo.png", hf.fifo, "error", "not a regular file"),
    single("self-loop.png", hf.symlink("self-loop.png"), "error", "no such file"),
    single("dangling.png", hf.symlink("nowhere.png"), "error", "no such file"),
    Case("file-dev-null", train("/dev/null"), "error", ("not a regular file",)),
    Case("file-missing", train("{d}/missing.png"), "error", ("no such file",)),
    # ---- a DATA folder with one odd entry beside a good image: skipped with a warning
    in_folder("zero", "zero.png", lambda p: p.write_bytes(b"")),
    in_folder("truncated", "cut.png", hf.truncated_png),
    in_folder("garbage", "noise.jpg", hf.garbage),
    in_folder("bomb", "bomb.png", hf.bomb_png, "warn", "bomb.png", "megapixel"),
    in_folder("fifo", "fifo.png", hf.fifo),
    in_folder("dangling-link", "gone.png", hf.symlink("nowhere.png")),
    Case("folder-link-loop", train(), "warn", ("loopa.png", "loopb.png"),
         folder({"loopa.png": hf.symlink("loopb.png"), "loopb.png": hf.symlink(LOOP)}), 1),
    in_folder("folder-loop", "sub", loop_dir, "ok", count=1),
    in_folder("dir-named-png", "dir.png", mkdir_with_image, "ok", count=2),
    in_folder("hidden", ".hidden.png", hf.garbage, "ok", count=1),
    in_folder("non-utf8-good", "\udcff\udcfe.png", hf.good_png, "ok", count=2),
    in_folder("non-utf8-bad", "\udcffbad.png", hf.garbage, "warn", "\\udcffbad.png"),
    in_folder("newline-name", "two\nlines.png", hf.garbage, "warn", "two\\nlines.png"),
    Case("folder-locked-file", train(), "perm", ("locked.png",),
         folder({"locked.png": lambda p: (hf.good_png(p), hf.locked(p))})),
    Case("folder-locked-subfolder", train(), "perm", ("sub",), folder({"sub": sub_locked})),
    Case("folder-only-bad", train(), "error", ("none of the 2",),
         folder({"a.png": hf.garbage, "b.png": lambda p: p.write_bytes(b"")}, good=0)),
    Case("folder-empty", train(), "error", ("no images",), folder({}, good=0)),
    Case("folder-text-only", train(), "error", ("no images",), folder({"a.txt": hf.garbage}, good=0)),
    Case("folder-of-meshes", train(), "error", ("a.obj", "no triangle faces"),
         folder({"a.obj": hf.garbage}, good=0)),
    # ---- .npy / .npz arrays
    single("int32.npy", hf.npy(np.zeros((2, 4, 4), np.int32)), "error", "uint8 or uint16"),
    single("complex.npy", hf.npy(np.zeros((2, 4, 4), np.complex64)), "error", "numeric"),
    single("strings.npy", hf.npy(np.zeros((2, 4, 4), "U3")), "error", "numeric"),
    single("objects.npy", hf.npy(np.zeros((2, 4, 4), object), True), "error", "pickle"),
    single("rank1.npy", hf.npy(np.zeros(16, np.uint8)), "error", "shape"),
    single("rank2.npy", hf.npy(np.zeros((4, 4), np.uint8)), "error", "shape"),
    single("rank5.npy", hf.npy(np.zeros((1, 2, 4, 4, 3), np.uint8)), "error", "shape"),
    single("nan.npy", hf.npy(np.full((2, 4, 4), np.nan, np.float32)), "error", "NaN"),
    single("inf.npy", hf.npy(np.full((2, 4, 4), np.inf, np.float32)), "error", "NaN or infinite"),
    single("range.npy", hf.npy(np.full((2, 4, 4), 7.0, np.float32)), "error", "[0, 1]"),
    single("empty.npy", hf.npy(np.zeros((0, 4, 4), np.uint8)), "error", "empty"),
    single("channels7.npy", hf.npy(np.zeros((2, 4, 4, 7), np.uint8)), "error", "channels"),
    single("forged.npy", hf.forged_npy, "error", "truncated"),
    single("cut.npy", hf.cut(hf.npy(np.zeros((2, 8, 8), np.uint8)), 0.7), "error", "truncated"),
    single("zero.npy", lambda p: p.write_bytes(b""), "error", "cannot read"),
    single("garbage.npy", hf.garbage, "error", "cannot read"),
    single("rgba.npy", hf.npy(np.full((3, 4, 4, 4), 200, np.uint8)), "ok", count=3),
    single("empty.npz", hf.npz(), "error", "no arrays"),
    single("vectors.npz", hf.npz(a=np.zeros(4), b=np.zeros((2, 2))), "error", "no [N,H,W]"),
    single("objects.npz", hf.npz(images=np.zeros((2, 4, 4), object)), "error", "pickle"),
    single("flipped.npz", hf.flip_middle(lambda p: np.savez_compressed(p, images=hf.rgb(64, 64)[None])),
           "error", "cannot read"),
    single("cut.npz", hf.cut(hf.npz(images=np.zeros((2, 8, 8), np.uint8)), 0.5), "error", "cannot read"),
    single("zero.npz", lambda p: p.write_bytes(b""), "error", "cannot read"),
    # ---- built-ins and training flags
    Case("builtin-unknown", train("builtin:nope"), "error", ("builtin:shapes",)),
    Case("builtin-empty-name", train("builtin:"), "error", ("unknown built-in",)),
    *[Case(f"builtin-count-{c}", train(f"builtin:shapes:{c}"), "error", ("count",))
      for c in ("0", "abc", "1000001", "-5")],
    *[Case(f"size-{s}", train("builtin:shapes:8", "--size", s), "error", ("--size",))
      for s in ("0", "100000", "8x0", "-3", "abc", "8x8x8", "")],
    *[Case(f"flag{f}={v}", train("builtin:shapes:8", f, v), "error", (w,)) for f, v, w in [
        ("--steps", "-1", "steps"), ("--batch-size", "0", "batch_size"), ("--lr", "nan", "lr"),
        ("--lr", "inf", "lr"), ("--lr", "-1", "lr"), ("--lr", "0", "lr"),
        ("--latent-dim", "0", "latent_dim"), ("--hidden", "0", "hidden"), ("--layers", "0", "layers"),
        ("--val-fraction", "1.5", "val_fraction"), ("--seed", "-1", "seed"),
        ("--device", "tpu", "device"), ("--device", "cuda:99", "cuda"), ("--precision", "fp8", "precision"),
        ("--model", "mlp", "model"), ("--w0", "1e309", "w0"), ("--checkpoint-every", "-1", "checkpoint"),
        ("--log-every", "0", "log_every"), ("--points-per-signal", "-5", "points_per_signal"),
        ("--kl-weight", "-1", "kl_weight"), ("--inner-steps", "0", "inner_steps"),
        ("--latent-grid", "9", "larger than the 8x8"), ("--latent-grid", "4x3", "square"),
        ("--latent-grid", "-2", "--latent-grid"), ("--latent-grid", "abc", "--latent-grid"),
        ("--modulation", "some", "modulation"), ("--origin-step", "newton", "origin_step"),
        ("--origin-step", "", "origin_step")]],
    Case("flag-grid-over-latent-limit", train("builtin:shapes:8", "--latent-grid", "8",
                                              "--latent-dim", "128"), "error", ("4096 limit",)),
    Case("flag-gauss-newton-variational", train("builtin:shapes:8", "--origin-step", "gauss-newton",
                                                "--variational"), "ok", count=8),
    Case("flag-learned-variational", train("builtin:shapes:8", "--origin-step", "learned",
                                           "--variational"), "error", ("--variational",)),
    Case("flag-gauss-newton-variational-steps", train("builtin:shapes:8", "--origin-step",
                                                      "gauss-newton", "--variational", "--inner-steps",
                                                      "2"), "error", ("one inner step",)),
    Case("flag-gauss-newton-grid", train("builtin:shapes:8", "--origin-step", "gauss-newton",
                                         "--latent-grid", "2", "--modulation", "all"), "ok", count=8),
    Case("flag-huge-model", train("builtin:shapes:8", "--hidden", "8192", "--layers", "64"), "error",
         ("weights",)),
    Case("flag-steps-zero", train("builtin:shapes:8", "--steps", "0"), "ok", count=8),
    Case("flag-steps-not-int", train("builtin:shapes:8", "--steps", "abc"), "usage", ("--steps",)),
    Case("flag-unknown", train("builtin:shapes:8", "--bogus", "1"), "usage", ("--bogus",)),
    Case("resume-not-a-run", ["train", "x", "--resume", "--out", "{d}"], "error", ("not a run",)),
    Case("out-is-a-file", ["train", "builtin:shapes:8", *TRAIN[2:], "--out", "{d}/f"], "error",
         ("cannot write",), at("f", hf.garbage)),
    Case("out-under-a-file", ["train", "builtin:shapes:8", *TRAIN[2:], "--out", "{d}/f/run"], "error",
         ("cannot write",), at("f", hf.garbage)),
    Case("out-holds-a-run", ["train", "builtin:shapes:8", *TRAIN[2:], "--out", "{run}"], "error",
         ("already holds a run",)),
    # ---- render flags and inputs
    *[Case(f"render{f}={v}", render(f, v), "error", (w,)) for f, v, w in [
        ("-n", "0", "-n"), ("--max-memory", "0", "--max-memory"), ("--size", "0", "--size"),
        ("--size", "100000", "--size"), ("--backend", "tensorflow", "--backend"),
        ("--device", "cuda:7", "cuda")]],
    Case("render-size-1", render("--size", "1"), "ok"),
    Case("render-input-zero-byte", render("{d}/z.png"), "error", ("cannot read image",),
         at("z.png", lambda p: p.write_bytes(b""))),
    Case("render-input-fifo", render("{d}/f.png"), "error", ("not a regular file",), at("f.png", hf.fifo)),
    Case("render-input-missing", render("{d}/nope.png"), "error", ("no such file",)),
    Case("render-input-folder-with-bad", render("{d}/data"), "warn", ("noise.png",),
         folder({"noise.png": hf.garbage})),
    Case("render-inputs-and-latents", render("{d}/data", "--latents", "{d}/z.safetensors"), "error",
         ("not both",), lambda d: (folder({})(d), hf.latents(Z)(d / "z.safetensors"))),
    # ---- run folders: missing, extra or corrupted files
    Case("run-missing", render(), "error", ("no such run",), lambda d: shutil.rmtree(d / "run")),
    Case("run-is-a-file", ["render", "{d}/f", "--out", "{out}"], "error", ("no such run",),
         at("f", hf.garbage)),
    Case("run-no-config", render(), "error", ("not a run",), remove("config.json")),
    Case("run-config-is-a-folder", render(), "error", ("not a run",), make_dir("config.json")),
    Case("run-config-zero-bytes", render(), "error", ("JSON",), put("config.json", b"")),
    Case("run-config-garbage", render(), "error", ("JSON",), on_run(lambda r: hf.garbage(r / "config.json"))),
    Case("run-config-nested", render(), "error", ("nested",),
         on_run(lambda r: hf.nested_json(r / "config.json"))),
    Case("run-config-list", render(), "error", ("object",), put("config.json", b"[]")),
    Case("run-config-huge-int", render(), "error", ("JSON",),
         put("config.json", b'{"hidden": ' + b"9" * 5000 + b"}")),
    Case("run-config-unknown-key", render(), "error", ("'bogus'",),
         on_run(hf.edit_json("config.json", bogus=1))),
    Case("run-config-hidden-edited", render(), "error", ("shape",),
         on_run(hf.edit_json("config.json", hidden=9))),
    Case("run-no-model", render(), "error", ("model.safetensors",), remove("model.safetensors")),
    Case("run-model-is-a-folder", render(), "error", ("model.safetensors",), make_dir("model.safetensors")),
    Case("run-model-zero-bytes", render(), "error", ("safetensors",), put("model.safetensors", b"")),
    Case("run-model-truncated", render(), "error", ("safetensors",),
         on_run(lambda r: hf.cut(lambda p: None, 0.5)(r / "model.safetensors"))),
    Case("run-model-garbage", render(), "error", ("safetensors",),
         on_run(lambda r: hf.garbage(r / "model.safetensors"))),
    Case("run-model-nan", render(), "error", ("NaN",),
         on_run(hf.edit_tensors("model.safetensors", set_tensor("", lambda v: torch.full_like(v, NAN))))),
    Case("run-model-int", render(), "error", ("dtype",),
         on_run(hf.edit_tensors("model.safetensors", set_tensor("", lambda v: v.to(torch.int32))))),
    Case("run-model-extra-tensor", render(), "error", ("unexpected",),
         on_run(hf.edit_tensors("model.safetensors", add_tensor))),
    Case("run-model-missing-tensor", render(), "error", ("missing",),
         on_run(hf.edit_tensors("model.safetensors", set_tensor("", lambda v: None)))),
    Case("run-extra-files", render(), "ok", (), on_run(extra_files)),
    Case("run-stale-temp-files", resume("--steps", "3"), "ok", (), on_run(stale_temps), check=no_temps),
    Case("run-no-train-state", resume(), "error", ("missing",), remove("train_state.safetensors")),
    *[Case(f"run-state-{name}", resume(), "error", (words,),
           on_run(hf.edit_tensors("train_state.safetensors", ch))) for name, ch, words in [
          ("step-text", meta(step="abc"), "metadata"), ("step-negative", meta(step="-3"), "metadata"),
          ("info-list", meta(info="[]"), "metadata"),
          ("groups-garbage", meta(param_groups="[5]"), "optimizer"),
          ("groups-bad-betas", meta(param_groups='[{"lr": 0.1, "betas": "x"}]'), "optimizer"),
          ("opt-shape", set_tensor("exp_avg", lambda v: torch.zeros(3)), "shape"),
          ("opt-missing", set_tensor("exp_avg_sq", lambda v: None), "incomplete"),
          ("opt-nan", set_tensor("exp_avg", lambda v: torch.full_like(v, NAN)), "NaN"),
          ("weights-inf", set_tensor("weight", lambda v: torch.full_like(v, INF)), "NaN or inf")]],
    Case("run-metrics-garbage", resume("--steps", "3"), "ok", (),
         put("metrics.jsonl", b'\xff\xfe{"step": "x"}\n5\n[1]\n{"step": 1, "loss": "a"}\n{"step": 2')),
    Case("run-metrics-is-a-folder", resume(), "error", ("cannot write",), make_dir("metrics.jsonl")),
    Case("run-previews-is-a-file", resume("--steps", "3"), "error", ("cannot write",),
         on_run(previews_file)),
    # ---- latent files
    *[Case(f"latents-{name}", render("--latents", "{d}/z.safetensors"), "error", (words,),
           at("z.safetensors", writer)) for name, writer, words in [
        ("wrong-size", hf.latents(torch.zeros(2, 5)), "dimension"),
        ("no-rows", hf.latents(torch.zeros(0, 4)), "B >= 1"),
        ("rank1", hf.latents(torch.zeros(4)), "[B, D]"),
        ("nan", hf.latents(torch.full((2, 4), NAN)), "NaN"),
        ("int", hf.latents(torch.zeros(2, 4, dtype=torch.int32)), "floating-point"),
        ("wrong-key", hf.latents(Z, key="z"), "latents"),
        ("empty-file", hf.latents(None), "latents"),
        ("garbage", hf.garbage, "safetensors"),
        ("pickle", lambda p: torch.save({"latents": Z}, p), "safetensors")]],
    Case("latents-names-garbage", render("--latents", "{d}/z.safetensors"), "ok", (),
         at("z.safetensors", hf.latents(Z, "{not json"))),
    # ---- ONNX files (issue 4) and export
    Case("export-out-under-a-file", ["export", "{run}", "--out", "{d}/f/x.onnx", "--quiet"], "error",
         ("cannot write",), at("f", hf.garbage)),
    Case("export-damaged-run", ["export", "{run}", "--quiet"], "error", ("NaN",),
         on_run(hf.edit_tensors("model.safetensors", set_tensor("", lambda v: torch.full_like(v, NAN))))),
    Case("onnx-garbage", render("--backend", "onnx"), "error", ("not an ONNX file",),
         on_run(lambda r: hf.garbage(r / "decoder.onnx"))),
    Case("onnx-is-a-pickle", render("--backend", "onnx"), "error", ("not an ONNX file",),
         on_run(lambda r: torch.save({"decoder": Z}, r / "decoder.onnx"))),
    Case("onnx-metadata-edited", render("--backend", "onnx"), "error", ("'bogus' is unknown",),
         on_run(hf.onnx_config_edit(bogus=1))),
    Case("latents-names-hostile", render("--latents", "{d}/z.safetensors"), "ok", (),
         at("z.safetensors", hf.latents(torch.zeros(3, 4), ["../x", "/tmp/hostile-abs", ".."])),
         check=only_inside_out),
]

if os.path.exists("/proc/self/mem"):  # unreadable even for root: reading offset 0 fails (EIO)
    CASES.append(in_folder("proc-mem", "mem.png", hf.symlink("/proc/self/mem")))

assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
