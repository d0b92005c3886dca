"""Inference: from a trained model's maps to poses in the image. Chapter 02 (top-down); the OpenPose chapter
(bottom-up).

``topdown``: crop each person's box, ``model.predict``, flip test, decode with the codec, back to the image, and COCO
evaluation. ``bottomup``: find every keypoint in the whole image and group them into people.
"""
from posebook.inference.topdown import (PCK_THRESHOLD, coco_results, evaluate, pck_on_boxes, predict_crops,
                                        predict_dataset, predict_heatmaps, predict_image, to_image)

__all__ = ["PCK_THRESHOLD", "coco_results", "evaluate", "pck_on_boxes", "predict_crops", "predict_dataset",
           "predict_heatmaps", "predict_image", "to_image"]
