"""edge_app is the device runtime: every module must import with torch absent (blocked outright)."""
import subprocess
import sys

BLOCK_AND_IMPORT = r"""
import importlib, importlib.abc, pkgutil, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "torchvision", "conversion", "calibration"}:
            raise ImportError(f"blocked by test: {name}")
        return None

sys.meta_path.insert(0, Block())
import edge_app
names = ["edge_app"] + [m.name for m in pkgutil.walk_packages(edge_app.__path__, "edge_app.")]
for name in names:
    importlib.import_module(name)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "torchvision"})
assert not leaked, leaked
print(len(names))
"""


def test_every_edge_app_module_imports_without_torch():
    res = subprocess.run([sys.executable, "-c", BLOCK_AND_IMPORT], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout.strip()) >= 10  # the walk really found the package's modules
