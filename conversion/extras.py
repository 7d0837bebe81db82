"""Optional dependencies, imported where used, with an error that says which extra to install."""
from __future__ import annotations

import importlib
from typing import Any

_EXTRA = {"torch": "train", "torchvision": "train", "onnx": "train", "onnxscript": "train",
          "onnxconverter_common": "train", "tqdm": "train", "tensorrt": "jetson (TensorRT comes from "
          "JetPack: apt install python3-libnvinfer)", "pycuda": "jetson", "matplotlib": "eval",
          "tensorflow": "import", "tf2onnx": "import"}


class MissingExtra(ImportError):
    pass


def require(module: str) -> Any:
    """Import ``module`` or raise MissingExtra naming the extra that provides it (typed Any: torch and
    friends are optional extras, not type-checked here)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRA.get(top, "dev")
        raise MissingExtra(f"{module} is needed here but not installed ({exc}); install the "
                           f"'{extra}' extra: pip install -e '.[{extra.split()[0]}]'") from None
