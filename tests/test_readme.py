"""The README's quick start stays true: CI runs exactly its test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)


def test_two_quick_start_commands_and_ci_runs_the_test_one():
    cmds = quick_start_commands()
    assert len(cmds) == 2
    assert cmds[0].rstrip().endswith("inr-gon demo")
    assert "pytest" in cmds[1]
    assert cmds[1].strip() in (ROOT / ".ci" / "run").read_text()


def test_every_config_field_is_in_docs_config_md():
    from inr_gon.config import FIELDS

    text = (ROOT / "docs" / "config.md").read_text()
    missing = [name for name in FIELDS if f"`{name}`" not in text]
    assert not missing, f"docs/config.md does not list {missing}"


def test_modules_the_docs_name_exist():
    """`inr_gon/x/y.py`, `datasets/x.py` and `inr_gon.x.y[.name]` in README.md and docs/ resolve
    to a file (and the name to something it defines)."""
    import importlib

    wrong = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text()
        for path in re.findall(r"\b((?:inr_gon|datasets|cli|export|benchmarks|examples|tests)"
                               r"(?:/\w+)*\.py)\b", text):
            if not (ROOT / path).is_file():
                wrong.append(f"{doc.name}: {path}")
        for dotted in set(re.findall(r"`(inr_gon(?:\.\w+)+)`", text)):
            parts = dotted.split(".")
            for cut in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
                try:
                    obj = importlib.import_module(".".join(parts[:cut]))
                except ImportError:
                    continue
                for name in parts[cut:]:
                    obj = getattr(obj, name, None)
                if obj is None:
                    wrong.append(f"{doc.name}: {dotted}")
                break
    assert not wrong, wrong
