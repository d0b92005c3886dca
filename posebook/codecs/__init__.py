"""Codecs: keypoints <-> training targets and back; each is an object with ``encode`` and ``decode``. Chapter 01.

Public names are exported lazily from their submodules. To add one, add its module and one line to ``_EXPORTS``.
"""
from posebook._lazy import lazy_exports

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    "GaussianHeatmap": "gaussian", "get_max_preds": "gaussian", "quarter_offset": "gaussian",
    "dark_refine": "gaussian", "gaussian_modulate": "gaussian",
    "BlurHeatmap": "blur",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
