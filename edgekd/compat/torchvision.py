"""Make `import torchvision` work on the CPU-only torch wheel.

The torchvision wheel paired with torch 2.13.0 is a CUDA build. On a CPU torch its compiled
extension fails to load, and the Python side then registers fake kernels for `torchvision::nms`
and `qnms`, which raises `operator torchvision::nms does not exist` (pytorch/vision#9085).
Defining the operator schemas first lets the import finish; models and transforms.v2 are pure
Python and work. The detection ops themselves stay unavailable, which edgekd never needs.

Where torchvision imports normally this module does nothing.
"""

from __future__ import annotations

import importlib

# torchvision/_meta_registrations.py registers fake kernels for these two unconditionally; every
# other op there is guarded by `extension._has_ops()`, so these schemas are all the import needs.
_OP_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)

_library = None  # keeps the torch.library.Library alive for the process


def _extension_loads() -> bool:
    """Load torchvision's compiled ops the way torchvision would; False where the build does not fit."""
    import importlib.util
    from pathlib import Path

    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return True  # not installed: let the import raise its own error
    libs = sorted(Path(spec.origin).parent.glob("_C*.so"))
    if not libs:
        return False
    try:
        torch.ops.load_library(str(libs[0]))
        return True
    except OSError:  # e.g. libcudart missing: CUDA torchvision on CPU torch
        return False


def import_torchvision():
    """Import and return torchvision, first defining its op schemas where its extension cannot load."""
    global _library
    import sys

    if "torchvision" not in sys.modules and _library is None and not _extension_loads():
        import torch

        _library = torch.library.Library("torchvision", "DEF")
        for schema in _OP_SCHEMAS:
            _library.define(schema)
    return importlib.import_module("torchvision")
