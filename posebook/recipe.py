"""The training recipe of each profile, declared in one place: augmentation, crop and heatmap size, target width,
optimizer, learning-rate schedule and batch. Chapter 01 explains the ``cpu`` recipe with its measurements; the
chapters' live runs and ``python -m posebook.bench learn`` train with it.

``gpu`` and ``full`` keep the papers' recipe (HRNet's COCO yaml: scale 0.35, rotation 45 with p 0.6, half-body 0.3,
sigma 2 on 64 x 48 maps, Adam 1e-3, steps at epochs 170 and 200 of 210). The ``cpu`` recipe is what learns fastest
per CPU-minute on the synthetic people, from pilots on a 2-core CPU (one seed each, SimpleBaseline-R50):

- **Light augmentation** (scale 0.25, rotation 30 with p 0.4, no half-body; HRNet's MPII yaml with the Stacked
  Hourglass's rotation chance). HRNet's COCO recipe is made for 210 epochs; spent on one or two, it left PCK@0.1
  0.053 below the light recipe's, which passed its plateau in 40% of the steps.
- **Targets as wide relative to the person as the papers'**: HRNet's sigma 2 on a 64-pixel-high map is 1/32 of the
  crop height; the same at a 24 x 16 map is 0.75 px, raised to a floor of 1 px (below it a Gaussian is one hot pixel
  and its neighbours). Narrower targets raised AP 1.5x in the pilots.
- **96 x 64 crops** (24 x 16 maps): at equal CPU time they learn as fast as 128 x 96 and cost 1.6-2.3x less per
  step; the oracle (:mod:`posebook.inference.oracle`) scores their decoding ceiling at AP 0.85 (0.92 at 128 x 96).
- **Sub-pixel targets and decoding** (DARK, Zhang et al. 2020) for the Gaussian targets: at a 24 x 16 map one heatmap
  pixel is 4 crop pixels, and HRNet's whole-pixel targets with argmax and quarter-offset decoding cap COCO AP at
  0.85 even for a perfect network (the oracle); DARK's Gaussians centred at the exact position, decoded by a Taylor
  step, at 0.99. (CPN's and MSPN's blur targets keep their own decoding.)
- **A flat learning rate, then a cosine over the last half** (``flat_cosine``): every pilot curve flattened only
  when the cosine brought the learning rate near zero, so a cosine over the whole run stops learning early.
"""
from __future__ import annotations

from dataclasses import dataclass

from posebook.data.transforms import Augment

PAPER_MAP_HEIGHT = 64  # HRNet's 64 x 48 heatmaps of a 256 x 192 crop
PAPER_SIGMA = 2.0      # HRNet's target sigma at that size


@dataclass(frozen=True)
class Recipe:
    """How a profile trains a top-down network. ``sigma_for(heatmap_size)`` keeps the papers' target width relative
    to the crop (sigma 2 at a 64-high map), never below ``min_sigma``. ``schedule`` and ``cosine_tail`` are
    :func:`posebook.train.lr_factor`'s. Chapter 01."""

    name: str
    augment: Augment
    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    min_sigma: float
    optimizer: str = "adam"
    lr: float = 2e-3
    schedule: str = "flat_cosine"
    cosine_tail: float = 0.5
    warmup: int = 100
    batch_size: int = 32
    milestones: tuple[float, ...] = ()  # multistep: where the LR drops x 0.1, as shares of the run
    unbiased: bool = False  # Gaussian targets: DARK's sub-pixel centres and Taylor decoding (else HRNet's)

    def sigma_for(self, heatmap_size=None) -> float:
        """The Gaussian target's sigma in heatmap px: HRNet's 2 at a 64-high map, scaled to ``heatmap_size``'s
        height (default the recipe's own), at least ``min_sigma``."""
        h = (heatmap_size or self.heatmap_size)[0]
        return max(self.min_sigma, PAPER_SIGMA * h / PAPER_MAP_HEIGHT)

    @property
    def sigma(self) -> float:
        return self.sigma_for()

    @property
    def kernel_scale(self) -> float:
        """CPN's and MSPN's blur kernels (sized for 64-high maps) are scaled by this (the map's height / 64)."""
        return self.heatmap_size[0] / PAPER_MAP_HEIGHT

    def trainer_options(self, steps: int) -> dict:
        """The :class:`posebook.train.Trainer` keywords of this recipe for a run of ``steps``."""
        warmup = min(self.warmup, max(steps // 10, 0))
        return dict(steps=steps, batch_size=self.batch_size, optimizer=self.optimizer, lr=self.lr,
                    schedule=self.schedule, cosine_tail=self.cosine_tail, warmup_steps=warmup,
                    milestones=tuple(int(round(m * steps)) for m in self.milestones))

    def describe(self) -> dict:
        """Plain values (for records and the chapters' tables)."""
        a = self.augment
        return dict(recipe=self.name, input_size=list(self.input_size), heatmap_size=list(self.heatmap_size),
                    sigma=self.sigma, augment=dict(scale=a.scale, rotation=a.rotation, rotation_prob=a.rotation_prob,
                                                   half_body=a.half_body, flip=a.flip),
                    optimizer=self.optimizer, lr=self.lr, schedule=self.schedule, cosine_tail=self.cosine_tail,
                    warmup=self.warmup, batch_size=self.batch_size, unbiased=self.unbiased)


LIGHT = Augment(scale=0.25, rotation=30.0, rotation_prob=0.4, half_body=0.0, flip=0.5)

RECIPES = {
    "smoke": Recipe("cpu (smoke size)", LIGHT, input_size=(64, 64), heatmap_size=(16, 16), min_sigma=1.0,
                    warmup=0, batch_size=8),
    "cpu": Recipe("cpu", LIGHT, input_size=(96, 64), heatmap_size=(24, 16), min_sigma=1.0, unbiased=True),
    "gpu": Recipe("papers (HRNet COCO)", Augment.hrnet(), input_size=(256, 192), heatmap_size=(64, 48),
                  min_sigma=2.0, lr=1e-3, schedule="cosine", warmup=200),
    "full": Recipe("papers (HRNet COCO)", Augment.hrnet(), input_size=(256, 192), heatmap_size=(64, 48),
                   min_sigma=2.0, lr=1e-3, schedule="multistep", warmup=0, milestones=(170 / 210, 200 / 210)),
}


def recipe(profile_name: str | None = None) -> Recipe:
    """The recipe of ``profile_name`` (default: the active profile, :func:`posebook.profiles.profile`)."""
    from posebook.profiles import PROFILES, profile

    name = profile_name or profile()
    if name not in RECIPES:
        raise ValueError(f"recipe: unknown profile {name!r}; expected one of {PROFILES}")
    return RECIPES[name]
