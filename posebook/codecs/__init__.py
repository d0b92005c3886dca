"""Codecs: keypoints <-> training targets and back. Chapter 01.

Top-down heatmap codecs are :class:`HeatmapCodec` s with ``encode``, ``decode`` and their flip-test convention
``flip_shift``; the bottom-up targets of OpenPose (confidence maps and part affinity fields) are decoded by
grouping (:mod:`posebook.inference.bottomup`).
"""
from posebook.codecs.base import HeatmapCodec
from posebook.codecs.blur import BlurHeatmap, VisibleBlurHeatmap
from posebook.codecs.gaussian import GaussianHeatmap, dark_refine, gaussian_modulate, get_max_preds, quarter_offset
from posebook.codecs.paf import ConfidenceMaps, PartAffinityFields, coco_to_openpose, openpose_to_coco

__all__ = ["BlurHeatmap", "ConfidenceMaps", "GaussianHeatmap", "HeatmapCodec", "PartAffinityFields",
           "coco_to_openpose", "dark_refine", "gaussian_modulate", "get_max_preds", "openpose_to_coco",
           "quarter_offset", "VisibleBlurHeatmap"]
