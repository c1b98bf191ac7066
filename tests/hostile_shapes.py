"""Hostile-input rows for the 3D shape side: `train` on mesh files and folders and on
builtin:shapes3d, `mesh`, `eval` of an SDF run, and the image-only commands given an SDF run.
The same table format and outcomes as hostile_cases.py.

Mesh files live in {d}/data. {d}/outside holds a valid glTF buffer that a hostile .gltf names
by URL, absolute path or `..`: the runner fails a row that opens anything there or touches
the network (tests/guards.py), and a buffer read from there would load, so reading it would
also turn the expected error into a success. `run="sdf"` is a tiny SDF run (make_sdf_run).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import hostile_files as hf
import numpy as np
import torch
import trimesh
from hostile_cases import TRAIN, Case, at
from hostile_commands import BROKEN_RUNS, files_in_out

from inr_gon.cli.app import main

SPHERE = trimesh.creation.icosphere(1)  # closed, 42 vertices and 80 faces: cheap to sample
EXTS = ("obj", "ply", "stl", "off", "glb", "gltf")
MESH_TRAIN = [*TRAIN, "--sdf-samples", "256", "--sdf-points", "32"]
SDF_TRAIN = ["builtin:shapes3d:4", "--steps", "2", "--batch-size", "2", "--hidden", "16", "--layers", "2",
             "--latent-dim", "4", "--sdf-samples", "256", "--sdf-points", "32", "--val-fraction", "0.25",
             "--preview-every", "0", "--device", "cpu", "--quiet"]  # trains on items 0, 1 and 3


def make_sdf_run(out: Path) -> None:
    """Two steps do not learn a surface; with the output bias zeroed SIREN's function crosses
    zero all over (as in test_mesh.py), which is all the mechanics of meshing need."""
    from inr_gon.run import load_run, save_model

    try:
        main(["train", *SDF_TRAIN, "--out", str(out)])
    except SystemExit as e:
        assert e.code in (0, None), e.code
    run = load_run(out)
    with torch.no_grad():
        run.decoder.out.bias.zero_()
    save_model(out, run.model)


# ---- writers: each takes the path of one file ------------------------------------------------

def text(body: str):
    return lambda p: p.write_bytes(body.encode("latin-1"))


def obj(verts, faces, head: str = "") -> str:
    return head + "".join(f"v {x} {y} {z}\n" for x, y, z in verts) + "".join(
        f"f {a} {b} {c}\n" for a, b, c in faces)


def good(ext: str, mesh=SPHERE):
    def write(path: Path) -> None:
        if ext == "gltf":
            return gltf()(path)
        data = mesh.export(file_type=ext)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return write


def gltf(uri: str | None = None):
    """A .gltf at {d}/data/NAME with its one buffer beside it as NAME.bin, named by `uri`
    ({outside}: the absolute path of {d}/outside, where a valid copy waits) or NAME.bin."""
    def write(path: Path) -> None:
        files = trimesh.exchange.gltf.export_gltf(trimesh.Scene(SPHERE), merge_buffers=True)
        tree = json.loads(files["model.gltf"])
        buffer = files[tree["buffers"][0]["uri"]]
        outside = path.parent.parent / "outside"
        outside.mkdir(exist_ok=True)
        (outside / "secret.bin").write_bytes(buffer)
        (path.parent / f"{path.stem}.bin").write_bytes(buffer)
        tree["buffers"][0]["uri"] = uri.format(outside=outside) if uri else f"{path.stem}.bin"
        path.write_text(json.dumps(tree))
    return write


def gltf_fifo_buffer(path: Path) -> None:
    gltf("pipe.bin")(path)
    hf.fifo(path.parent / "pipe.bin")


def stl(triangles: np.ndarray):
    """A binary STL of triangles [N, 3, 3] (float32 on disk)."""
    def write(path: Path) -> None:
        rows = np.zeros(len(triangles), [("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
        rows["v"] = triangles
        path.write_bytes(b"\0" * 80 + struct.pack("<I", len(rows)) + rows.tobytes())
    return write


def ply_ascii(vertices: str, faces: str, nv: int = 3, nf: int = 1) -> str:
    return (f"ply\nformat ascii 1.0\nelement vertex {nv}\nproperty float x\nproperty float y\n"
            f"property float z\nelement face {nf}\nproperty list uchar int vertex_indices\nend_header\n"
            f"{vertices}{faces}")


def mesh_file(path: Path, vertices, faces) -> None:
    """vertices [N, 3] and 0-based faces [M, 3], unchecked, in the format of path's suffix:
    text .obj/.off/.ply, or a binary .stl of the faces that index a vertex."""
    v, f = np.asarray(vertices, np.float64).reshape(-1, 3), np.asarray(faces, np.int64).reshape(-1, 3)
    if path.suffix == ".stl":
        with np.errstate(over="ignore"):  # beyond float32: inf on disk, as intended
            return stl(v[f[((f >= 0) & (f < len(v))).all(1)]].astype(np.float32))(path)
    rows = "".join("{!r} {!r} {!r}\n".format(*map(float, x)) for x in v)
    tris = "".join(f"3 {a} {b} {c}\n" for a, b, c in f)
    path.write_text({".obj": obj(v, f + 1), ".off": f"OFF\n{len(v)} {len(f)} 0\n{rows}{tris}",
                     ".ply": ply_ascii(rows, tris, len(v), len(f))}[path.suffix])


def point_cloud(path: Path) -> None:
    cloud = trimesh.PointCloud(np.random.default_rng(0).normal(size=(20, 3)))
    path.write_bytes(cloud.export(file_type="ply"))


def scene(path: Path) -> None:
    parts = [trimesh.creation.box([1, 1, 1]), SPHERE.copy().apply_translation([3, 0, 0])]
    path.write_bytes(trimesh.Scene(parts).export(file_type="glb"))


def ply_bomb(path: Path) -> None:
    """A binary PLY header promising a billion vertices and faces, then 100 bytes."""
    head = ply_ascii("", "", 10**9, 10**9).replace("ascii", "binary_little_endian")
    path.write_bytes(head.encode() + bytes(100))


def png(path: Path) -> None:
    hf.good_png(path)


def sub_with_mesh(path: Path) -> None:
    path.mkdir()
    good("ply")(path / "inner.ply")


TRI = [(0, 0, 0), (1, 0, 0), (0, 1, 0)]
HUGE = obj(SPHERE.vertices * 1e30, SPHERE.faces + 1)
BAD = {  # name -> writer of one unusable mesh file, and words of the reason
    "empty.obj": (text(""), "no triangle faces"),
    "noise.glb": (hf.garbage, "does not parse"),
    "nan.obj": (text(obj([*TRI[:2], ("nan", 1, 0)], [(1, 2, 3)])), "non-finite"),
    "inf.stl": (stl(np.array([[[0, 0, 0], [1, 0, 0], [np.inf, 1, 0]]])), "non-finite"),
    "range.ply": (text(ply_ascii("0 0 0\n1 0 0\n0 1 0\n", "3 0 1 99\n")), "face indices outside"),
    "flat.obj": (text(obj([*TRI[:2], (2, 0, 0)], [(1, 2, 3), (1, 1, 2)])), "degenerate"),
    "cloud.ply": (point_cloud, "no triangle faces"),
}


def data(entries: dict, good_count: int = 1):
    """{d}/data holding `good_count` good sphere .obj files and the given entries."""
    def build(d: Path) -> None:
        (d / "data").mkdir(exist_ok=True)
        for i in range(good_count):
            good("obj")(d / "data" / f"good{i}.obj")
        for name, writer in entries.items():
            writer(d / "data" / name)
    return build


def train3d(data_spec: str = "{d}/data", *flags: str) -> list[str]:
    return ["train", data_spec, *MESH_TRAIN, *flags]


def single(name: str, writer, expect: str, *words: str, check=None) -> Case:
    """One mesh file as DATA; an error names the file."""
    words = (name, *words) if expect == "error" else words
    return Case(f"mesh-file-{name}", train3d(f"{{d}}/data/{name}"), expect, words, at(f"data/{name}", writer),
                1 if expect == "ok" else None, check)


def in_folder(name: str, writer, expect: str = "warn", *words: str, count: int = 1) -> Case:
    """One odd entry beside a good mesh in a DATA folder."""
    return Case(f"mesh-folder-{name}", train3d(), expect, words or (name,), data({name: writer}), count)


def same_sphere(d: Path) -> None:
    """The 1e30 sphere was cleaned as the unit one: no vertices merged, still closed."""
    from inr_gon.datasets.meshes import load_mesh

    mesh = load_mesh(d / "data" / "huge.obj")
    assert len(mesh.vertices) == len(SPHERE.vertices) and mesh.is_watertight


def mesh(*args: str, out: str = "{out}") -> list[str]:
    return ["mesh", "{run}", *args, "--out", out, "--quiet"]


def meshes_only_in_out(count: int):
    """`count` meshes with their previews (and a grid of them), all in --out; nothing else written."""
    def check(d: Path) -> None:
        files = {p.name for p in (d / "out").iterdir()}
        plys = {f for f in files if f.endswith(".ply")}
        grid = {"grid.png"} if count > 1 else set()
        assert len(plys) == count and files == plys | {f[:-4] + ".png" for f in plys} | grid, files
        assert all(len(trimesh.load(d / "out" / f, force="mesh").faces) for f in plys)
        assert {p.name for p in d.iterdir()} <= {"run", "out", "data"} and not (d / "run" / "meshes").exists()
    return check


IMAGE = at("a.png", png)
SDF = "sdf"
# Reasons per format (default "does not parse"); None: a broken .stl's reason depends on
# whether trimesh finds charset_normalizer to guess a text encoding with, so only its name is asked.
ZERO_WHY = {"obj": "no triangle faces", "stl": "no triangle faces", "gltf": "not glTF"}
GARBAGE_WHY = {"obj": "no triangle faces", "stl": None, "gltf": "not glTF"}
CUT_WHY = {"stl": None, "gltf": "not glTF"}


def flaws(ext: str):
    """(name, writer, reason or None) of an empty, a random and a half-cut file of type ext."""
    return [(f"zero.{ext}", text(""), ZERO_WHY.get(ext, "does not parse")),
            (f"garbage.{ext}", hf.garbage, GARBAGE_WHY.get(ext, "does not parse")),
            (f"cut.{ext}", hf.cut(good(ext), 0.5), CUT_WHY.get(ext, "does not parse"))]


def two_bad(*names: str):
    return data({n: BAD[n][0] for n in names}, 0)


def on_sdf(id: str, argv: list[str], expect: str, words: tuple = (), files=None, check=None) -> Case:
    return Case(id, argv, expect, words, files, check=check, run=SDF)


SDF_WORDS = ("sdf run", "inr-gon mesh")
BROKEN_SDF_RUNS = {**BROKEN_RUNS,  # "ae" on an SDF run is refused before its weights are read
                   "config-model-edited": (*BROKEN_RUNS["config-model-edited"][:1], "is for images",
                                           *BROKEN_RUNS["config-model-edited"][2:])}
CASES: list[Case] = [
    # ---- one mesh file as DATA, each format: empty, random bytes, cut in half; and a good one
    *[single(name, writer, "error", *([why] if why else []))
      for ext in EXTS for name, writer, why in flaws(ext)],
    *[single(f"good.{ext}", good(ext), "ok") for ext in EXTS],
    # ---- one mesh file: no faces, non-finite, out of range, degenerate, odd but valid
    *[single(name, writer, "error", why) for name, (writer, why) in BAD.items() if name != "noise.glb"],
    single("vertices-only.obj", text(obj(TRI, [])), "error", "no triangle faces"),
    single("range.obj", text(obj(TRI, [(1, 2, 9)])), "error", "does not parse"),
    single("range.off", text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 -7\n"), "error", "does not parse"),
    single("one-point.obj", text(obj([(1, 1, 1)] * 3, [(1, 2, 3)])), "error", "degenerate"),
    single("bomb.ply", ply_bomb, "error", "does not parse"),
    single("fifo.obj", hf.fifo, "error", "not a regular file"),
    # a single triangle is a valid open surface: every sampled distance is positive (nothing
    # is inside it), and the run trains on it
    single("triangle.obj", text(obj(TRI, [(1, 2, 3)])), "ok"),
    single("huge.obj", text(HUGE), "ok", check=same_sphere),  # coordinates of 1e30
    single("huge.stl", stl(SPHERE.triangles * 1e30), "ok"),
    single("latin1.obj", text(obj(SPHERE.vertices, SPHERE.faces + 1, "# caf\xe9 \xe0 la cr\xe8me\n")), "ok"),
    single("scene.glb", scene, "ok"),  # two meshes flattened into one shape
    single("sheet.obj", text(obj(TRI, [(1, 2, 3), (1, 3, 2)])), "ok"),  # double-sided: closed, volume 0
    # ---- .gltf buffers: only from beside the file, never a URL or a path outside
    *[single(f"buffer-{name}.gltf", gltf(uri), "error", "never downloads") for name, uri in [
        ("http", "http://127.0.0.1:9/secret.bin"), ("file-url", "file://{outside}/secret.bin"),
        ("absolute", "{outside}/secret.bin"), ("dotdot", "../outside/secret.bin")]],
    single("buffer-fifo.gltf", gltf_fifo_buffer, "error", "not a file beside it"),
    single("buffer-missing.gltf", gltf("nothing.bin"), "error", "not a file beside it"),
    single("buffer-inside.gltf", gltf("sub/../buffer-inside.bin"), "ok"),
    # ---- a DATA folder: one unusable entry beside a good mesh is skipped with a warning
    *[in_folder(name, writer, "warn", name, why) for name, (writer, why) in BAD.items()],
    in_folder("remote.gltf", gltf("http://127.0.0.1:9/secret.bin"), "warn", "remote.gltf", "never downloads"),
    in_folder("escape.gltf", gltf("../outside/secret.bin"), "warn", "escape.gltf", "never downloads"),
    in_folder("fifo.obj", hf.fifo, "warn", "fifo.obj", "not a regular file"),
    in_folder("dangling.stl", hf.symlink("nowhere.stl"), "warn", "dangling.stl", "link to nothing"),
    Case("mesh-folder-link-loop", train3d(), "warn", ("loopa.obj", "loopb.obj"),
         data({"loopa.obj": hf.symlink("loopb.obj"), "loopb.obj": hf.symlink("loopa.obj")}), 1),
    in_folder(".hidden.obj", hf.garbage, "ok", count=1),
    in_folder("sub", sub_with_mesh, "ok", count=2),
    Case("mesh-folder-formats", train3d(), "ok", files=data({f"s.{e}": good(e) for e in EXTS}, 0), count=6),
    Case("mesh-folder-with-image", train3d(), "error", ("both images", "meshes"), data({"a.png": png})),
    Case("mesh-folder-only-bad", train3d(), "error", ("none of the 2 mesh files",),
         two_bad("empty.obj", "nan.obj")),
    Case("mesh-folder-only-text", train3d(), "error", ("no images or meshes",),
         data({"a.txt": hf.garbage}, 0)),
    # ---- builtin:shapes3d and the SDF training flags
    *[Case(f"shapes3d-count-{c}", train3d(f"builtin:shapes3d:{c}"), "error", ("count",))
      for c in ("0", "-1", "abc", "1000001")],
    Case("shapes3d-count-memory", train3d("builtin:shapes3d:100000", "--sdf-samples", "100000000"), "error",
         ("memory", "--sdf-samples")),
    Case("shapes3d-count-2", train3d("builtin:shapes3d:2"), "ok", count=2),
    *[Case(f"shapes3d{f}={v}", train3d("builtin:shapes3d:2", f, v), "error", (w,)) for f, v, w in [
        ("--model", "conv", "for images"), ("--sdf-samples", "8", "sdf_samples"),
        ("--sdf-points", "0", "sdf_points"), ("--sdf-noise", "x", "sdf_noise"),
        ("--sdf-clamp", "nan", "sdf_clamp"), ("--sdf-uniform", "-1", "sdf_uniform"),
        ("--points-per-signal", "16", "--sdf-points")]],
    # ---- mesh: flags, inputs, --out, runs of another kind or damaged
    *[on_sdf(f"mesh-r={v}", mesh("-r", v), "error", ("--resolution",)) for v in ("0", "1", "-5", "5000")],
    on_sdf("mesh-r=abc", mesh("-r", "abc"), "usage", ("--resolution",)),
    *[on_sdf(f"mesh{f}={v}", mesh("-r", "8", f, v), "error", (w,)) for f, v, w in [
        ("--format", "stl", "--format"), ("--format", "", "--format"), ("-n", "0", "-n"),
        ("--max-memory", "0", "--max-memory"), ("--device", "cuda:7", "cuda")]],
    *[on_sdf(f"mesh-input-{name}", mesh(spec, "-r", "8"), "error", (w,), files) for name, spec, files, w in [
        ("missing", "{d}/nope.obj", None, "no such file"),
        ("garbage", "{d}/data/g.ply", at("data/g.ply", hf.garbage), "does not parse"),
        ("nan", "{d}/data/nan.obj", at("data/nan.obj", BAD["nan.obj"][0]), "non-finite"),
        ("image", "{d}/a.png", IMAGE, "not a mesh file"),
        ("image-builtin", "builtin:shapes:2", None, "image data"),
        ("escape", "{d}/data/e.gltf", at("data/e.gltf", gltf("../outside/secret.bin")), "never downloads")]],
    on_sdf("mesh-input-folder-with-bad", mesh("{d}/data", "-r", "8"), "warn", ("nan.obj", "non-finite"),
           data({"nan.obj": BAD["nan.obj"][0]}), check=meshes_only_in_out(1)),
    *[on_sdf(f"mesh-out-{name}", mesh("-r", "8", out=out), "error", ("cannot write",), at("f", hf.garbage))
      for name, out in [("is-a-file", "{d}/f"), ("under-a-file", "{d}/f/m")]],
    Case("mesh-image-run", mesh("-r", "8"), "error", ("SDF run",)),
    *[on_sdf(f"mesh-run-{name}", ["mesh", run, "-r", "8", "--out", "{out}", "--quiet"], "error", (words,),
             damage) for name, (run, words, damage) in BROKEN_SDF_RUNS.items()],
    on_sdf("mesh-original-frame-builtin", mesh("builtin:shapes3d:2", "-r", "8", "--original-frame"), "ok",
           check=meshes_only_in_out(2)),
    on_sdf("mesh-ok", mesh("-r", "8"), "ok", check=meshes_only_in_out(3)),
    on_sdf("mesh-ok-file-original-frame", mesh("{d}/data/s.off", "-r", "8", "--original-frame"), "ok",
           files=at("data/s.off", good("off")), check=meshes_only_in_out(1)),
    # ---- eval of an SDF run on bad shape data; the image-only commands on an SDF run
    *[on_sdf(f"eval-sdf-{name}", ["eval", "{run}", spec, "--json", "--quiet"], "error", (w,), files)
      for name, spec, files, w in [
          ("missing", "{d}/nope", None, "no such file"),
          ("garbage", "{d}/data/g.obj", at("data/g.obj", hf.garbage), "no triangle faces"),
          ("mixed-folder", "{d}/data", data({"a.png": png}), "both images"),
          ("only-bad", "{d}/data", two_bad("empty.obj", "cloud.ply"), "none of the 2"),
          ("image", "{d}/a.png", IMAGE, "not a mesh file"),
          ("image-builtin", "builtin:shapes:2", None, "image data")]],
    on_sdf("eval-sdf-limit", ["eval", "{run}", "builtin:shapes3d:2", "--limit", "1"], "error", ("--limit",)),
    on_sdf("eval-sdf-folder-with-bad", ["eval", "{run}", "{d}/data", "--json", "--quiet"], "warn",
           ("cloud.ply",), data({"cloud.ply": point_cloud})),
    *[on_sdf(f"{cmd}-sdf-run{tag}", argv, "error", SDF_WORDS, files) for cmd, tag, argv, files in [
        ("render", "", ["render", "{run}", "--out", "{out}", "--quiet"], None),
        ("render", "-input", ["render", "{run}", "{d}/a.png", "--out", "{out}"], IMAGE),
        ("render", "-latents", ["render", "{run}", "--latents", "{d}/z.safetensors", "--out", "{out}"],
         at("z.safetensors", hf.latents(torch.zeros(2, 4)))),
        ("render", "-onnx", ["render", "{run}", "--backend", "onnx", "--out", "{out}"], None),
        ("sample", "", ["sample", "{run}", "-n", "2", "--out", "{out}", "--quiet"], None),
        ("interpolate", "", ["interpolate", "{run}", "{d}/a.png", "{d}/a.png", "--out", "{out}/w.gif"],
         IMAGE)]],
    # ---- fit and eval on shapes: refinement, --resolution; an image given to an SDF run's fit
    on_sdf("fit-sdf-image", ["fit", "{run}", "{d}/a.png", "--out", "{out}/z.safetensors", "--quiet"],
           "error", ("not a mesh file",), IMAGE),
    on_sdf("fit-sdf-ok", ["fit", "{run}", "builtin:shapes3d:2", "--refine-steps", "2", "--out",
                          "{out}/z.safetensors", "--quiet"], "ok", check=files_in_out("z.safetensors")),
    on_sdf("fit-sdf-onnx", ["fit", "{run}", "builtin:shapes3d:2", "--backend", "onnx"], "error",
           ("--backend",)),
    *[on_sdf(f"eval-sdf-r={v}", ["eval", "{run}", "builtin:shapes3d:2", "-r", v, "--quiet"], "error",
             ("--resolution",)) for v in ("0", "1", "-5", "5000")],
    on_sdf("eval-sdf-refine-r8", ["eval", "{run}", "builtin:shapes3d:2", "-r", "8", "--refine-steps",
                                  "2", "--json", "--quiet"], "ok"),
    on_sdf("export-sdf-run", ["export", "{run}", "--out", "{out}/d.onnx", "--quiet"], "ok",
           check=files_in_out("d.onnx")),
    on_sdf("resume-sdf-run", ["train", "x", "--resume", "--out", "{run}", "--steps", "3", "--quiet"], "ok"),
]


def api_cases(run: Path, d: Path) -> dict:
    """name -> (call, expected outcome, words), as in test_hostile_inputs.api_cases."""
    from inr_gon.datasets import Sampling, load_shapes
    from inr_gon.inference.mesh import mesh_run
    from inr_gon.inference.shape_eval import evaluate_shapes
    from inr_gon.run import load_run

    data({"fifo.obj": hf.fifo})(d)
    at("bad/range.ply", BAD["range.ply"][0])(d)
    at("bad/escape.gltf", gltf("../outside/secret.bin"))(d / "x")
    r, s = load_run(run), Sampling(count=256)
    return {
        "load_shapes(face out of range)": (lambda: load_shapes(d / "bad" / "range.ply", s), "error",
                                           "outside"),
        "load_shapes(gltf ../ buffer)": (lambda: load_shapes(d / "x" / "bad" / "escape.gltf", s), "error",
                                         "never downloads"),
        "load_shapes(folder with fifo)": (lambda: load_shapes(d / "data", s, quiet=True), "warn", "fifo.obj"),
        "load_shapes(too many shapes)": (lambda: load_shapes("builtin:shapes3d:100000", Sampling(10**8)),
                                         "error", "memory"),
        "sdf Run.encode(images)": (lambda: r.encode(np.zeros((1, 8, 8, 3))), "error", "renders no images"),
        "sdf Run.render(latents)": (lambda: r.render(torch.zeros(1, 4)), "error", "renders no images"),
        "evaluate_shapes(missing)": (lambda: evaluate_shapes(r, str(d / "nope"), quiet=True), "error",
                                     "no such file"),
        "mesh_run(format stl)": (lambda: mesh_run(r, [], d / "m", 8, "stl"), "error", "--format"),
    }

