"""The Colab path: pip-installing the built package into an environment that already has torch (and nothing else of
ours) gives a posebook whose every module imports. A dependency missing from pyproject.toml, or a range that pip
cannot satisfy next to the preinstalled torch, fails here before it fails a reader on Colab.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(sysconfig.get_paths()["purelib"])  # the repository's .venv, where the pinned torch lives
# What Colab preinstalls that we borrow from .venv: torch and the packages torch itself needs to import.
PREINSTALLED = ("torch", "torchgen", "functorch", "filelock", "typing_extensions", "sympy", "mpmath", "networkx",
                "jinja2", "markupsafe", "fsspec")
# Copied to build the wheel: the package and its metadata only (the build must not write into the checkout).
PACKAGE_FILES = ("pyproject.toml", "README.md", "posebook")

IMPORT_EVERYTHING = """
import importlib, pkgutil, sys
import posebook
assert "site-packages" in posebook.__file__, f"imported the checkout, not the install: {posebook.__file__}"
names = [m.name for m in pkgutil.walk_packages(posebook.__path__, "posebook.") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
print(len(names) + 1, "modules imported")
"""


def borrow_preinstalled(env_dir: Path) -> None:
    """Make torch and its own dependencies visible in the fresh venv (a .pth file), as Colab has them installed."""
    shelf = env_dir / "colab-preinstalled"
    shelf.mkdir()
    for entry in SITE.iterdir():
        top = entry.name.split("-")[0].removesuffix(".py")
        if top in PREINSTALLED:
            (shelf / entry.name).symlink_to(entry)
    purelib = Path(subprocess.run([str(env_dir / "bin" / "python"), "-c",
                                   "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    (purelib / "colab-preinstalled.pth").write_text(f"{shelf}\n")


def build_wheel(out: Path) -> Path:
    """Build posebook's wheel from a copy of the package files, with .venv's setuptools (no network)."""
    src = out / "src"
    src.mkdir(parents=True)
    for name in PACKAGE_FILES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(out / "dist"), str(src)], check=True, capture_output=True, text=True)
    return next((out / "dist").glob("posebook-*.whl"))


@pytest.mark.slow
def test_pip_install_next_to_a_preinstalled_torch_imports_every_module(tmp_path):
    env_dir = tmp_path / "colab"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    borrow_preinstalled(env_dir)
    python = str(env_dir / "bin" / "python")
    wheel = build_wheel(tmp_path / "build")
    # pyproject's ranges, resolved by pip; torch must count as already satisfied, never be downloaded again
    install = subprocess.run([python, "-m", "pip", "install", "--disable-pip-version-check", str(wheel)],
                             capture_output=True, text=True, env={**os.environ, "PIP_NO_INPUT": "1"})
    assert install.returncode == 0, f"pip install of {wheel.name} failed:\n{install.stdout[-3000:]}\n{install.stderr}"
    assert "Downloading torch" not in install.stdout and "Collecting torch" not in install.stdout, install.stdout
    imported = subprocess.run([python, "-c", IMPORT_EVERYTHING], capture_output=True, text=True, cwd=tmp_path,
                              env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert imported.returncode == 0, f"importing the installed posebook failed:\n{imported.stderr[-3000:]}"
    assert "modules imported" in imported.stdout
