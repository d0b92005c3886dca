"""Blocks: small PyTorch modules named after the papers' parts (Hourglass, ExchangeUnit, GlobalNet, ...).

Public names are exported lazily from their submodules. To add one, add its module and one line to ``_EXPORTS``.
"""
from posebook._lazy import lazy_exports

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    "BasicBlock": "resnet",
    "Bottleneck": "resnet",
    "ResNet": "resnet",
    "ExchangeUnit": "hrnet",
    "HighResolutionModule": "hrnet",
    "Transition": "hrnet",
    "Residual": "residual",
    "Hourglass": "hourglass",
    "IntermediateSupervision": "hourglass",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
