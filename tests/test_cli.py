"""The edge-app command line: every job is a subcommand and --help says truthfully what is built."""
import subprocess
import sys

import pytest

from edge_app.__main__ import COMMANDS, NOT_BUILT_EXIT, build_parser, main


def _run(*args):
    return subprocess.run([sys.executable, "-m", "edge_app", *args], capture_output=True, text=True,
                          timeout=60)


def test_help_lists_every_job():
    res = _run("--help")
    assert res.returncode == 0
    for name in ("run", "train", "export", "build", "calibrate", "evaluate", "config", "service"):
        assert f"    {name}" in res.stdout, name


@pytest.mark.parametrize("name", [n for n, c in COMMANDS.items() if not c.built])
def test_unbuilt_commands_say_so(name, capsys):
    argv = name.split() + (["install"] if name == "service" else [])
    assert main(argv) == NOT_BUILT_EXIT
    assert "not built yet" in capsys.readouterr().err
    # and --help says so too
    help_text = build_parser().format_help()
    assert "[not built yet]" in help_text


def test_built_commands_are_not_marked():
    for name, cmd in COMMANDS.items():
        if cmd.built:
            res = _run(*name.split(), "--help")
            assert res.returncode == 0
            assert "not built yet" not in res.stdout


def test_console_script_is_installed():
    import shutil
    exe = shutil.which("edge-app") or str(__import__("pathlib").Path(sys.executable).parent / "edge-app")
    res = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "edge-vision" in res.stdout


def test_no_command_prints_help_and_fails():
    res = _run()
    assert res.returncode == 2 and "COMMAND" in res.stdout
