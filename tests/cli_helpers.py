"""Running the CLI in-process from tests, and the one-line error contract."""

import pytest

from inr_gon.cli.app import main


def run_cli(capsys, *args):
    """(exit code, stdout, stderr) of `inr-gon ARGS` run in this process."""
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
        raise SystemExit(0)
    cap = capsys.readouterr()
    return e.value.code, cap.out, cap.err


def assert_input_error(code, err, *words):
    """Exit 2 with exactly one `error: ...` line naming each of words, no traceback."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], err
