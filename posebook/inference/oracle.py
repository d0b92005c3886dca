"""The oracle: a "model" that returns each validation crop's own encoded targets, so that the evaluation path itself
can be measured with no network in it.

Run through the very path the chapters and studies score a network with (crop, flip test, decode, back-projection to
the image, COCO AP), the oracle scores the *decoding ceiling* of a setting (input size, heatmap size, sigma or blur
kernel): what a network that learned its targets perfectly would score. A trained model's AP is read against it; a
pipeline bug (a shifted target, a wrong flip pairing, a back-projection off by a pixel) shows as an oracle below the
ceiling. Chapter 01.

The oracle recognises a crop by its pixels. For the unflipped crop it returns the targets the dataset encodes for it;
for the mirrored crop of the flip test it returns what a perfect model would see there: the targets of the mirrored
keypoints (x -> W - 1 - x) with left and right swapped, encoded by the same codec.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from posebook.data.transforms import affine_points, get_affine_transform


def _key(image: torch.Tensor) -> bytes:
    return hashlib.blake2b(image.detach().cpu().contiguous().float().numpy().tobytes(), digest_size=16).digest()


class TargetOracle(torch.nn.Module):
    """``predict(crops)`` -> the encoded targets of each crop of ``dataset`` (an evaluation dataset: items are fixed,
    no augmentation), for the crops and for their mirror images. Its codec is ``dataset.codec`` (the decoding one).
    A crop that is not one of the dataset's raises, naming its position in the batch. Chapter 01."""

    def __init__(self, dataset):
        super().__init__()
        if getattr(dataset, "train", False):
            raise ValueError(f"TargetOracle: {type(dataset).__name__} is a training set (train=True): its crops are "
                             "augmented anew each time, so no crop can be recognised; use an evaluation set")
        codec = dataset.codec
        pairs = dataset.skeleton.flip_pairs
        swap = np.arange(dataset.skeleton.num_keypoints)
        for a, b in pairs:
            swap[a], swap[b] = b, a
        self.targets: dict[bytes, torch.Tensor] = {}
        for i in range(len(dataset)):
            item = dataset[i]
            image, meta = item["image"], item["meta"]
            h, w = image.shape[-2:]
            matrix = get_affine_transform(np.asarray(meta["center"]), np.asarray(meta["scale"]),
                                          float(meta["rotation"]), (h, w))
            keypoints = np.asarray(meta["keypoints"], dtype=np.float64)
            in_crop = affine_points(keypoints[:, :2], matrix)
            plain, _ = codec.encode(in_crop, keypoints[:, 2])
            mirrored = np.stack([w - 1 - in_crop[:, 0], in_crop[:, 1]], axis=1)[swap]
            flipped, _ = codec.encode(mirrored, keypoints[swap, 2])
            self.targets[_key(image)] = torch.as_tensor(plain)
            self.targets[_key(torch.flip(image, dims=[-1]))] = torch.as_tensor(flipped)
        self.anchor = torch.nn.Parameter(torch.zeros(()), requires_grad=False)  # a device for predict_dataset

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.predict(images)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        out = []
        for b, image in enumerate(images):
            target = self.targets.get(_key(image))
            if target is None:
                raise KeyError(f"TargetOracle: crop {b} of the batch is not a crop of its dataset (nor its mirror)")
            out.append(target)
        return torch.stack(out).to(images.device)
