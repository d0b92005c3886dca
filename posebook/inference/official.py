"""The official implementations beside the book's, for ``python -m posebook.bench infer --official ROOT``.

The HRNet authors' repository (Sun et al., CVPR 2019; :data:`OFFICIAL_URL`) holds the official HRNet
(``lib/models/pose_hrnet.py``) and SimpleBaseline (``lib/models/pose_resnet.py``, Xiao et al., ECCV 2018) with their
COCO configurations. None of it ships with posebook: ``ROOT`` is a clone of that repository, whose model files are
imported from there and built from its own YAML files. The book's networks have the official state_dict keys and
shapes (chapters 04 and 07 test them), so the official network loads the book's weights strictly and must compute
the same maps: the bench then times the two side by side. Chapters 04 and 07.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from torch import nn

OFFICIAL_URL = "https://github.com/leoxiaobin/deep-high-resolution-net.pytorch"
# a registered posebook model -> (the official model file, the official COCO config), both relative to the clone
FILES = {
    "hrnet_w32": ("lib/models/pose_hrnet.py", "experiments/coco/hrnet/w32_256x192_adam_lr1e-3.yaml"),
    "hrnet": ("lib/models/pose_hrnet.py", "experiments/coco/hrnet/w32_256x192_adam_lr1e-3.yaml"),
    "simple_baseline": ("lib/models/pose_resnet.py", "experiments/coco/resnet/res50_256x192_d256x3_adam_lr1e-3.yaml"),
}


class Config(dict):
    """A nested dict read both ways the official code reads its yacs config: ``cfg["MODEL"]["EXTRA"]`` and
    ``cfg.MODEL.EXTRA``."""

    def __init__(self, values: dict):
        super().__init__({k: Config(v) if isinstance(v, dict) else v for k, v in values.items()})

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"the official config has no key {name!r} (it has {sorted(self)})") from None


def official_model(name: str, root) -> nn.Module:
    """The official network behind the registered model ``name`` (:data:`FILES`), built by the official
    ``get_pose_net(cfg, is_train=False)`` from the clone ``root`` and its COCO config, in eval mode. Raises
    naming the file when the clone lacks it. Chapters 04 and 07."""
    import yaml

    if name not in FILES:
        raise ValueError(f"no official implementation is known for model {name!r}; known: {sorted(FILES)}")
    code, config = (Path(root) / part for part in FILES[name])
    for path in (code, config):
        if not path.is_file():
            raise FileNotFoundError(f"--official {root}: {path} does not exist; ROOT must be a clone of "
                                    f"{OFFICIAL_URL}")
    spec = importlib.util.spec_from_file_location(f"official_{code.stem}", code)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "get_pose_net", None)):
        raise AttributeError(f"{code} defines no get_pose_net(cfg, is_train); is {root} a clone of {OFFICIAL_URL}?")
    cfg = Config(yaml.safe_load(config.read_text()))
    return module.get_pose_net(cfg, is_train=False).eval()


def official_beside(model: nn.Module, name: str, root) -> nn.Module:
    """The official network of ``name`` holding ``model``'s weights (loaded strictly: the same keys and shapes), in
    eval mode, so the two compute the same maps. Chapters 04 and 07."""
    official = official_model(name, root)
    try:
        official.load_state_dict(model.state_dict(), strict=True)
    except RuntimeError as error:
        raise RuntimeError(f"the official {FILES[name][0]} (config {FILES[name][1]}) does not take model {name!r}'s "
                           f"weights: build it at the official config's size (no --arg)\n{error}") from None
    return official.eval()
