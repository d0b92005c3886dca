"""Inference: from a trained model's maps to poses in the image. Chapter 02 (top-down); the OpenPose chapter
(bottom-up).

``topdown``: crop each person's box, ``model.predict``, flip test, decode with the codec, back to the image, and COCO
evaluation (its names are re-exported here). ``bottomup``: find every keypoint in the whole image and group them into
people (``posebook.inference.bottomup.parse``; its ``coco_results`` differ from the top-down ones, so they stay there).
"""
from posebook.inference import bottomup
from posebook.inference.optimize import optimize
from posebook.inference.topdown import (PCK_THRESHOLD, coco_results, evaluate, flip_shift_of, pck_on_boxes,
                                        predict_crops, predict_dataset, predict_heatmaps, predict_image, to_image)

__all__ = ["PCK_THRESHOLD", "bottomup", "coco_results", "evaluate", "flip_shift_of", "optimize", "pck_on_boxes",
           "predict_crops", "predict_dataset", "predict_heatmaps", "predict_image", "to_image"]
