"""Checkpoint files and the notebooks' run cache: the one atomic writer, the one reader, ``load_or_train``.

``write_checkpoint`` and ``read_checkpoint`` are the only places posebook saves and loads torch files of its own (the
Trainer's state, converted weights). The run cache keys a chapter's finished run on everything that determines it:
the chapter's config, the profile, a digest of the library's own source and the torch version, so that a change to
a codec, a loss or an augmentation trains again instead of reloading a model the new code did not make. Chapter 03.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
from pathlib import Path

import torch

import posebook
from posebook._io import atomic_write

FORMAT = "posebook.train/1"  # the Trainer's checkpoints (posebook.train.Trainer.state_dict)
_RUNS: dict[tuple[str, str], dict] = {}  # (chapter, file name) -> what load_or_train did in this process


def write_checkpoint(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then ``os.replace``: the file is whole or absent."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def read_checkpoint(path: str | os.PathLike, format: str | None = FORMAT):
    """Load a torch file on the CPU with ``weights_only=True`` (it cannot run code); errors name the file.

    With ``format`` (default: a Trainer checkpoint) the file must be a dict whose ``"format"`` is that; with
    ``format=None`` any weights-only torch file is returned as it is (published weights, state_dicts).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # zip, pickle and weights-only errors all mean: this file cannot be used as is
        raise ValueError(f"checkpoint {path} cannot be read (truncated or not a torch file): "
                         f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}") from None
    if format is not None and (not isinstance(ckpt, dict) or ckpt.get("format") != format):
        found = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"checkpoint {path} is not a posebook Trainer checkpoint (expected format {format!r}; "
                         f"found {found})")
    return ckpt


# ---- the notebooks' run cache ----------------------------------------------------------------------------------

def _code(path: Path) -> bytes:
    """A module's code without its docstrings, comments and layout (the dump of its syntax tree): prose edits keep
    the digest."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


@functools.cache
def source_digest(*packages: str) -> str:
    """SHA-256 of the code of ``packages`` (e.g. "posebook.data"; the whole library when none is given): every
    ``*.py`` below each, by relative path, docstrings, comments and layout left out (a prose edit reuses caches).

    Computed once per process. Part of the run cache's key (:func:`checkpoint_path`) and of the studies' rendered
    data (``posebook.study.RenderedItems``). Chapter 03.
    """
    root = Path(posebook.__file__).resolve().parent
    folders = [root / Path(*name.split(".")[1:]) for name in packages] or [root]
    paths = []
    for name, folder in zip(packages or ("posebook",), folders):
        single = folder.with_suffix(".py")
        found = sorted(folder.rglob("*.py")) if folder.is_dir() else [single] if single.is_file() else []
        if not found:
            raise ValueError(f"source_digest: {name!r} is not a module or package of posebook ({folder})")
        paths += found
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(_code(path) + b"\0")
    return digest.hexdigest()


def run_key(config: dict, profile: str) -> dict:
    """What determines a cached run's result: the chapter's config, the profile, the library's source, torch."""
    return {"config": config, "profile": profile, "source": source_digest(), "torch": torch.__version__}


def checkpoint_path(chapter: str, config: dict, profile: str | None = None) -> Path:
    """Where the run of (chapter, profile, config) is cached: ``cache_dir("checkpoints")/chapter-profile-hash.pt``.

    The hash covers :func:`run_key` (config, profile, library source digest, torch version): after any change to
    the library a chapter trains again. Trial runs (``$POSEBOOK_TRIAL``) are kept in
    ``cache_dir("checkpoints", "trial")``: a few steps saved under a real run's name would later be loaded as if
    they were that run.
    """
    profile = profile or posebook.profile()
    key = json.dumps(run_key(config, profile), sort_keys=True, default=str)
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    folder = posebook.cache_dir("checkpoints", "trial") if posebook.is_trial() else posebook.cache_dir("checkpoints")
    return Path(folder) / f"{chapter}-{profile}-{digest}.pt"


def load_or_train(trainer, chapter: str, config: dict, profile: str | None = None):
    """Load the cached run of (chapter, profile, config) if there is one, else train (resuming a partial run).

    ``trainer`` is a :class:`posebook.train.Trainer`. Sets ``trainer.loaded`` to True when nothing had to be
    trained, and notes the run for :func:`runs` (so :func:`posebook.results.record` can say the model was not
    retrained). The checkpoint is saved during training (every ``checkpoint_every`` steps if set) and at the end.
    """
    path = checkpoint_path(chapter, config, profile)
    trainer.checkpoint = path
    if path.exists():
        trainer.load(path)
    trainer.loaded = trainer.step >= trainer.steps
    if not trainer.loaded:
        trainer.fit()
    _RUNS[(chapter, path.name)] = {"checkpoint": path.name, "retrained": not trainer.loaded,
                                   "source": source_digest()[:12]}
    return trainer


def runs(chapter: str) -> list[dict]:
    """The runs :func:`load_or_train` gave ``chapter`` in this process: checkpoint file name, whether this process
    trained it (``retrained``) and the library source digest it is keyed on."""
    return [dict(run) for (name, _), run in _RUNS.items() if name == chapter]
