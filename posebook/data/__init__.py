"""Data: synthetic people, COCO/MPII datasets, top-down transforms and downloads. Explained in chapter 01.

The modules import one way: ``transforms`` and ``cocofile`` (COCO JSON) at the bottom; ``topdown`` (records, items,
``TopDownDataset``) on ``transforms``; ``coco`` (COCO and MPII datasets) on those; ``synthetic`` (scenes) on
``synthetic_body``; ``synthetic_topdown`` on ``synthetic`` and ``coco``; ``bottomup`` (whole-image samples for
bottom-up models) on ``topdown``, ``cocofile``, ``synthetic`` and the part-affinity codecs; ``download`` (transport) on
``cocofile``.
"""
from posebook.data.bottomup import BottomUpAugment, BottomUpDataset, SyntheticBottomUp, make_bottomup_sample
from posebook.data.cocofile import coco_api, coco_subset, images_with_people, read_coco
from posebook.data.coco import CocoKeypoints, MpiiKeypoints, downloaded_coco, downloaded_coco_splits
from posebook.data.mpii_mat import convert_mpii, load_mpii_mat, to_hrnet_json
from posebook.data.synthetic import Scene, SceneOptions, SyntheticScenes, make_coco, occlusion_stats, render_scene, \
    write_coco
from posebook.data.synthetic_topdown import SyntheticTopDown
from posebook.data.topdown import ImageCache, PersonRecord, TopDownDataset, load_image, make_sample
from posebook.data.transforms import Augment, clip_box, denormalize

__all__ = [
    "Augment", "BottomUpAugment", "BottomUpDataset", "SyntheticBottomUp", "make_bottomup_sample", "CocoKeypoints", "ImageCache", "MpiiKeypoints", "PersonRecord", "Scene", "SceneOptions",
    "SyntheticScenes", "SyntheticTopDown", "TopDownDataset", "clip_box", "coco_api", "coco_subset", "convert_mpii",
    "denormalize", "downloaded_coco", "downloaded_coco_splits", "images_with_people", "load_image",
    "load_mpii_mat", "make_coco", "make_sample", "occlusion_stats", "read_coco", "render_scene", "to_hrnet_json",
    "write_coco",
]
