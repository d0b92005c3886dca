"""Data: synthetic people, COCO/MPII datasets, top-down transforms and downloads. Explained in chapter 01.

Public names are exported lazily from their submodules. To add one, add its module and one line to ``_EXPORTS``.
"""
from posebook._lazy import lazy_exports

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    "CocoKeypoints": "coco", "MpiiKeypoints": "coco", "downloaded_coco": "coco", "downloaded_coco_splits": "coco", "TopDownDataset": "topdown", "SyntheticTopDown": "topdown",
    "PersonRecord": "topdown", "make_sample": "topdown", "Augment": "transforms",
    "render_scene": "synthetic",
    "Scene": "synthetic",
    "SceneOptions": "synthetic",
    "SyntheticScenes": "synthetic",
    "make_coco": "synthetic",
    "write_coco": "synthetic",
    "occlusion_stats": "synthetic",
    "load_mpii_mat": "mpii_mat", "to_hrnet_json": "mpii_mat", "convert_mpii": "mpii_mat",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
