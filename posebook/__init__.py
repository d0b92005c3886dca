"""posebook: a textbook on 2D human pose estimation that runs.

The library holds every block the chapters explain. Top level: the run profile (:func:`profile`, :func:`sized`),
the device (:func:`device`) and an environment report for bug reports (:func:`env_report`).
"""
from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

from .profiles import PROFILES, Settings, is_trial, profile, sized

__version__ = "0.1.0"
__all__ = ["PROFILES", "Settings", "profile", "sized", "is_trial", "device", "cache_dir", "sample_data", "env_report", "__version__"]


def cache_dir(*parts: str) -> "os.PathLike":
    """Where checkpoints and generated data are kept: ``$POSEBOOK_CACHE``, else ``~/.cache/posebook``.

    Sub-folders named by ``parts`` are created on demand.
    """
    from pathlib import Path

    base = Path(os.environ.get("POSEBOOK_CACHE") or Path.home() / ".cache" / "posebook")
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def device():
    """The torch device to run on: ``$POSEBOOK_DEVICE`` if set, else CUDA when available, else CPU."""
    import torch

    wanted = os.environ.get("POSEBOOK_DEVICE")
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sample_data(*parts: str):
    """Path of the real sample data (COCO/MPII photos) if present, else None. Chapter 00.

    Looks in ``$POSEBOOK_SHARED/data`` when that is set, else in a ``shared/data`` folder beside the repository (the
    project's fixtures), and then in the copy the package ships: the four COCO val2017 photos of ``coco_sample``
    with their annotations (``posebook/sample_data/coco_sample``; licences in its ATTRIBUTION.md), so the chapters
    show real photos wherever they are opened. The MPII photos are not shipped (their licence is for research use):
    chapters fall back to the COCO sample or synthetic people without them.
    """
    from pathlib import Path

    shared = os.environ.get("POSEBOOK_SHARED")
    roots = [Path(shared) / "data"] if shared else [Path(__file__).resolve().parents[2] / "shared" / "data"]
    roots.append(Path(__file__).resolve().parent / "sample_data")
    for root in roots:
        path = root.joinpath(*parts)
        if parts and path.exists():
            return path
    return None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def env_report() -> str:
    """Versions of Python, torch, CUDA/GPU, numpy, OpenCV, pycocotools and friends, one per line (for bug reports)."""
    lines = [
        f"posebook     {__version__}",
        f"python       {sys.version.split()[0]} ({platform.platform()})",
    ]
    try:
        import torch

        cuda = torch.version.cuda or "none"
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
        lines += [f"torch        {torch.__version__}", f"CUDA         {cuda}", f"GPU          {gpu}",
                  f"threads      {torch.get_num_threads()}"]
    except ImportError:
        lines.append("torch        not installed")
    try:
        import cv2

        lines.append(f"opencv       {cv2.__version__}")
    except ImportError:
        lines.append("opencv       not installed")
    for dist in ("numpy", "pycocotools", "matplotlib", "ipywidgets", "tqdm"):
        lines.append(f"{dist:<12} {_version(dist)}")
    try:
        active = profile()
    except ValueError as err:
        active = f"invalid ({err})"
    try:
        active += " (trial run)" if is_trial() else ""
    except ValueError as err:
        active += f", trial setting invalid ({err})"
    lines.append(f"profile      {active}")
    return "\n".join(lines)
