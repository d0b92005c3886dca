"""Vendor the browser assets of the rendered book, so `_build/html` reads with no network.

Jupyter Book 1.x pages load MathJax, require.js and the ipywidgets HTML manager from CDNs. This script installs the
versions pinned in `package.json` / `package-lock.json` with `npm ci` and copies the files the pages load into
`book/vendor/` (ignored by git); `_config.yml` serves that folder at the root of the built book (`html_extra_path`)
and points `mathjax_path` / `nb_ipywidgets_js` at it. Run by `make book` (`make vendor`); a no-op when up to date.

Usage: python book_tools/vendor.py [--check]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "package-lock.json"
NODE_MODULES = ROOT / "node_modules"
VENDOR = ROOT / "book" / "vendor"
STAMP = ".inputs-sha256"  # inside VENDOR: digest of the package-lock.json and the files the copies came from
# our own small script, served beside embed-amd.js (why: see its comments)
OWN_FILES = {"jupyter-widgets/widgets-paths.js": ROOT / "book_tools" / "widgets-paths.js"}

# destination folder in VENDOR (= in _build/html) -> (source folder in node_modules, file patterns to copy)
ASSETS: dict[str, tuple[str, tuple[str, ...]]] = {
    # the whole es5 tree: tex-mml-chtml.js loads its fonts, TeX extensions and menu from beside itself
    "mathjax": ("mathjax/es5", ("**/*",)),
    "requirejs": ("requirejs", ("require.js",)),
    # embed-amd.js carries the base and controls widgets; its font-awesome files sit beside it
    "jupyter-widgets": ("@jupyter-widgets/html-manager/dist",
                        ("embed-amd.js", "*.woff2", "*.woff", "*.ttf", "*.eot", "*.svg")),
}


def inputs_digest() -> str:
    """The sha256 of package-lock.json and our own files: the copies are current when made from these inputs."""
    if not LOCK.is_file():
        raise FileNotFoundError(f"{LOCK} is missing: the pinned npm versions live there (run `npm install` once)")
    digest = hashlib.sha256(LOCK.read_bytes())
    for source in OWN_FILES.values():
        digest.update(source.read_bytes())
    return digest.hexdigest()


def is_current() -> bool:
    """True when book/vendor holds every asset, copied from the current package-lock.json."""
    stamp = VENDOR / STAMP
    return stamp.is_file() and stamp.read_text().strip() == inputs_digest() and all(
        (VENDOR / name).is_dir() for name in ASSETS)


def npm_ci() -> None:
    """Install exactly the locked versions into node_modules (no scripts run: the packages ship built files)."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not on PATH: install Node.js 18+ (Debian: apt-get install nodejs npm); "
                           "the book vendors MathJax and the widget manager from the npm registry")
    subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                   cwd=ROOT, check=True)


def copy_assets(dest: Path) -> None:
    """Copy each asset's files from node_modules into ``dest``, failing on a pattern that matches nothing."""
    for name, (source, patterns) in ASSETS.items():
        src = NODE_MODULES / source
        for pattern in patterns:
            files = [p for p in src.glob(pattern) if p.is_file()]
            if not files:
                raise FileNotFoundError(f"{src}/{pattern} matched no file: is package.json's version right?")
            for file in files:
                target = dest / name / file.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, target)
    for name, source in OWN_FILES.items():
        shutil.copy2(source, dest / name)


def vendor() -> None:
    """Install the pinned packages and replace book/vendor with fresh copies, all or nothing."""
    npm_ci()
    VENDOR.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=".vendor-", dir=VENDOR.parent))
    try:
        copy_assets(fresh)
        (fresh / STAMP).write_text(inputs_digest() + "\n")
        old = VENDOR.with_name(fresh.name + "-old")
        if VENDOR.exists():
            os.replace(VENDOR, old)
        os.replace(fresh, VENDOR)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.rmtree(VENDOR.with_name(fresh.name + "-old"), ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if book/vendor is missing or stale")
    args = parser.parse_args(argv)
    if args.check:
        current = is_current()
        print("book/vendor is current" if current else "book/vendor is missing or stale: run `make vendor`")
        return 0 if current else 1
    if is_current():
        print(f"book/vendor is current ({', '.join(ASSETS)})")
        return 0
    vendor()
    print(f"vendored {', '.join(ASSETS)} into {VENDOR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
