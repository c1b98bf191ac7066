"""The package's structure can be read from its imports: no import cycles among its modules, and no
function-local imports of inr_gon (each module states what it needs at its top). The only imports
allowed inside functions are lazy imports of optional or heavy dependencies, listed below with why."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Source folder -> installed package name (pyproject's package-dir).
SOURCES = {"inr_gon": "inr_gon", "cli": "inr_gon.cli", "export": "inr_gon.export",
           "datasets": "inr_gon.datasets"}

# Modules that may be imported inside a function, on purpose (never a module of inr_gon).
LAZY_ALLOWED = {
    "onnxruntime",  # optional extra ([cpu] or [gpu]): only the ONNX runtime paths need it
    "imageio_ffmpeg",  # optional extra ([video]): only .mp4 output needs it
    "tifffile",  # optional, through imageio: only TIFF inputs need it
    "matplotlib",  # optional: plots only
    "tensorboard",  # optional logger
    "torch.utils.tensorboard",  # the same optional extra ([tensorboard]): needs that package
    "tomllib",  # standard library from Python 3.11 only: --config FILE.toml (3.10 gets JSON)
    # Required but heavy (about a second together), needed only by the mesh/SDF paths: kept out
    # of image commands and `--help`.
    "trimesh",
    "skimage",
    "igl",
    "scipy.sparse",  # spanning trees of unoriented clouds' normals (datasets/normals.py)
    "scipy.sparse.csgraph",
}


def modules() -> dict[str, Path]:
    """Installed module name -> source file, for every module of the package."""
    found = {}
    for folder, package in SOURCES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported(tree: ast.AST, module: str, is_package: bool, known: set[str]):
    """Yield (node, target module) for every import of a package module in `tree`."""
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, module, is_package)
            # `from inr_gon.models import gon` imports a module; `from inr_gon.gon import GON` a name.
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for name in names:
            if name.split(".")[0] == "inr_gon":
                while name not in known and "." in name:
                    name = name.rsplit(".", 1)[0]
                yield node, name


def function_local(tree: ast.AST):
    """Import nodes that sit inside a function body."""
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    yield node


def graph() -> dict[str, set[str]]:
    mods = modules()
    edges = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        edges[name] = {t for _, t in imported(tree, name, is_package, set(mods)) if t != name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_every_source_folder_is_found():
    mods = modules()
    assert "inr_gon" in mods and "inr_gon.cli.app" in mods and "inr_gon.datasets" in mods


def test_the_cycle_finder_finds_cycles():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(edges) == [["a", "b", "c"]]


def test_no_import_cycles():
    # A package's __init__ re-exporting its modules is not a cycle of ideas: drop edges from a
    # package to its own submodules before looking for loops.
    edges = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in graph().items()}
    assert cycles(edges) == []


def test_no_function_local_imports_of_the_package():
    bad = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text(), str(path))
        for node in function_local(tree):
            targets = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [_resolve(node, name, path.name == "__init__.py")]
            )
            for target in targets:
                if target.split(".")[0] == "inr_gon" or not any(
                    target == ok or target.startswith(ok + ".") for ok in LAZY_ALLOWED
                ):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {target}")
    assert bad == []
