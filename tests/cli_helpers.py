"""Running the CLI in-process from tests, and the one-line error contract."""

import pytest

from inr_gon.cli.app import main


def cli_exit(*args) -> int:
    """Exit code of `inr-gon ARGS` run in this process (its output stays with the caller's capture)."""
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
        raise SystemExit(0)
    return e.value.code


def run_cli(capsys, *args):
    """(exit code, stdout, stderr) of `inr-gon ARGS` run in this process."""
    code = cli_exit(*args)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def one_error_line(err: str) -> str:
    """stderr holds exactly one `error: ...` line and no traceback: that line."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def assert_input_error(code, err, *words):
    """Exit 2 with exactly one `error: ...` line naming each of words, no traceback."""
    assert code == 2, err
    line = one_error_line(err)
    for w in words:
        assert w in line, err
