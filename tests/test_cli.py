"""The edge-app command line: every job is a subcommand whose handler exists and whose --help works."""
import subprocess
import sys

import pytest

from edge_app.__main__ import COMMANDS


def _run(*args):
    return subprocess.run([sys.executable, "-m", "edge_app", *args], capture_output=True, text=True,
                          timeout=60)


def test_help_lists_every_job():
    res = _run("--help")
    assert res.returncode == 0
    for name in ("run", "doctor", "inspect", "train", "export", "build", "calibrate", "evaluate", "config", "service"):
        assert f"    {name}" in res.stdout, name


@pytest.mark.parametrize("name", ["train", "export", "build", "calibrate", "evaluate"])
def test_passthrough_commands_show_their_own_options(name):
    res = _run(name, "--help")
    assert res.returncode == 0, res.stderr
    assert f"usage: edge-app {name}" in res.stdout


def test_train_without_torch_names_the_extra():
    code = ("import importlib.abc, sys\n"
            "class B(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, n, p=None, t=None):\n"
            "        if n.split('.')[0] in ('torch', 'torchvision'): raise ImportError('no ' + n)\n"
            "sys.meta_path.insert(0, B())\n"
            "from edge_app.__main__ import main\n"
            "sys.exit(main(['train', '--model', 'unet']))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "pip install -e '.[train]'" in res.stderr


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_resolves_to_its_handler(name):
    """Each command's handler string names a real function (a typo would only show when a user runs it)."""
    import importlib
    module, func = COMMANDS[name].handler.split(":")
    assert callable(getattr(importlib.import_module(module), func))
    res = _run(*name.split(), "--help")
    assert res.returncode == 0 and res.stdout.startswith("usage: edge-app " + name), res.stdout[:200]


def test_console_script_is_installed():
    import shutil
    exe = shutil.which("edge-app") or str(__import__("pathlib").Path(sys.executable).parent / "edge-app")
    res = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "edge-vision" in res.stdout


def test_no_command_prints_help_and_fails():
    res = _run()
    assert res.returncode == 2 and "COMMAND" in res.stdout
