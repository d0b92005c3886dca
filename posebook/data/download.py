"""Checksummed, resumable downloads and safe archive extraction for the real datasets (COCO 2017, MPII).

Transport only (fetch, resume, checksum, extract); reading, checking and subsetting COCO annotations belong to
:mod:`posebook.data.cocofile`. Only ``data_scripts/`` (and chapter 07's opt-in cell) call these, and only when a
user runs them: nothing in the book or the tests reaches the network (the tests serve fixture files from
127.0.0.1). Explained in chapter 01 (real data).
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from tqdm.auto import tqdm

from posebook._io import atomic_write

from .cocofile import coco_subset, read_coco

COCO_URL = "http://images.cocodataset.org"
MPII_URL = "https://datasets.d2.mpi-inf.mpg.de/andriluka14cvpr"
# Mirrors (or the tests' local server) replace these bases; an argument wins over the environment variable.
COCO_URL_ENV = "POSEBOOK_COCO_URL"
MPII_URL_ENV = "POSEBOOK_MPII_URL"
USER_AGENT = "posebook-download/0.1 (+https://github.com/posebook/posebook)"


class DownloadError(OSError):
    """A download failed for good: an HTTP error, a size the server or the registry contradicts."""


class IncompleteDownloadError(DownloadError):
    """The transfer stopped early (connection closed, timeout); the ``.part`` file is kept and a rerun resumes it."""


class ChecksumError(DownloadError):
    """The downloaded bytes do not have the expected SHA-256; they were deleted."""


class UnsafeArchiveError(ValueError):
    """An archive member would land outside the destination folder (absolute path, ``..``, escaping link)."""


@dataclass(frozen=True)
class KnownFile:
    """A file the scripts fetch, with its size and SHA-256 where published or recorded (``None``: unknown)."""

    url: str
    size: int | None
    sha256: str | None
    note: str

    @property
    def name(self) -> str:
        return PurePosixPath(urllib.parse.urlparse(self.url).path).name


# Neither COCO nor MPII publishes checksums. Hashes stay None until someone pins the value the scripts print.
KNOWN_FILES: dict[str, KnownFile] = {f.name: f for f in (
    KnownFile(f"{COCO_URL}/annotations/annotations_trainval2017.zip", 252_907_541, None,
              "COCO 2017 train/val annotations (241 MB). Size: the Content-Length images.cocodataset.org serves, "
              "as several independent public download logs record it; SHA-256 unknown (COCO publishes none)."),
    KnownFile(f"{MPII_URL}/mpii_human_pose_v1.tar.gz", None, None,
              "MPII Human Pose images (12.9 GB per the MPII site; exact size and SHA-256 unknown)."),
    KnownFile(f"{MPII_URL}/mpii_human_pose_v1_u12_2.zip", None, None,
              "MPII Human Pose annotations, .mat (12.5 MB per the MPII site; exact size and SHA-256 unknown)."),
)}


def sha256sum(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks so a 13 GB archive does not need 13 GB of memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------- downloads

def download(url: str, dest: str | os.PathLike, sha256: str | None = None, *, size: int | None = None,
             progress: bool = True, chunk_size: int = 1 << 20, timeout: float = 30.0, retries: int = 3) -> Path:
    """Fetch ``url`` to ``dest``: stream into ``dest.part`` (resumed by an HTTP Range request), check size and SHA-256,
    then rename. A transfer that stops early is retried ``retries`` times, each resuming where it stopped."""
    dest = Path(dest)
    if dest.exists():
        _check_existing(dest, sha256)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, size, progress, chunk_size, timeout)
            break
        except IncompleteDownloadError:
            if attempt == retries:
                raise
            time.sleep(0.25 * 2**attempt)  # back off a little: the usual cause is a busy or flaky server
    _verify_sha256(url, part, dest, sha256)
    os.replace(part, dest)
    return dest


def _check_existing(dest: Path, sha256: str | None) -> None:
    # ``dest`` only ever appears through the final rename, so without a hash to compare it is complete.
    if sha256 is None:
        return
    actual = sha256sum(dest)
    if actual != sha256.lower():
        raise ChecksumError(f"{dest} exists but its SHA-256 is {actual}, expected {sha256.lower()}; "
                            f"delete it to download it again")


def _fetch(url: str, part: Path, size: int | None, progress: bool, chunk_size: int, timeout: float) -> None:
    """One attempt: append to ``part`` from where it stops (or restart it), then check the byte count."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={offset}-"} if offset else {})}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # nothing left after `offset`: complete, or a stale part longer than the file
            return _settle_unsatisfiable_range(url, part, offset, err, size)
        kind = IncompleteDownloadError if err.code >= 500 else DownloadError
        raise kind(f"{url}: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise IncompleteDownloadError(f"{url}: cannot connect ({err}); run again to retry") from err
    with response:
        start, total = _response_span(url, response, offset)
        if size is not None and total is not None and total != size:
            raise DownloadError(f"{url}: the server sends {total} bytes, expected {size}")
        _stream(url, response, part, start, total, progress, chunk_size)
    _check_size(url, part, total if total is not None else size)


def _settle_unsatisfiable_range(url: str, part: Path, offset: int, err, size: int | None) -> None:
    total = _total_from_content_range(err.headers.get("Content-Range"))
    if total == offset and (size is None or size == total):
        return
    part.unlink()  # longer than the file, or of another version: start over on the next attempt
    raise IncompleteDownloadError(f"{url}: the partial file {part} ({offset} bytes) does not fit the server's "
                                  f"file ({total} bytes); deleted, run again to restart")


def _total_from_content_range(value: str | None) -> int | None:
    total = (value or "").rpartition("/")[2].strip()
    return int(total) if total.isdigit() else None


def _response_span(url: str, response, offset: int) -> tuple[int, int | None]:
    """(first byte the body holds, total file size or None). A 200 means the server ignored Range: restart at 0."""
    if response.status == 206:
        first = (response.headers.get("Content-Range") or "").removeprefix("bytes ").partition("-")[0]
        if first.strip() != str(offset):
            raise DownloadError(f"{url}: asked for bytes from {offset}, the server answered "
                                f"Content-Range {response.headers.get('Content-Range')!r}")
        return offset, _total_from_content_range(response.headers.get("Content-Range"))
    length = response.headers.get("Content-Length")
    return 0, int(length) if length and length.isdigit() else None


def _stream(url: str, response, part: Path, start: int, total: int | None, progress: bool, chunk_size: int) -> None:
    bar = tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
               desc=part.name.removesuffix(".part"), disable=not progress)
    try:
        with bar, open(part, "ab" if start else "wb") as out:
            for chunk in iter(lambda: response.read(chunk_size), b""):
                out.write(chunk)
                bar.update(len(chunk))
    except (OSError, http.client.HTTPException) as err:
        raise IncompleteDownloadError(f"{url}: the transfer stopped ({err!r}); {part} is kept, "
                                      f"run again to resume") from err


def _check_size(url: str, part: Path, expected: int | None) -> None:
    got = part.stat().st_size
    if expected is None or got == expected:
        return
    if got < expected:
        raise IncompleteDownloadError(f"{url}: got {got} of {expected} bytes; {part} is kept, run again to resume")
    part.unlink()
    raise DownloadError(f"{url}: got {got} bytes, more than the {expected} expected; the download was deleted")


def _verify_sha256(url: str, part: Path, dest: Path, sha256: str | None) -> None:
    if sha256 is None:
        return
    actual = sha256sum(part)
    if actual != sha256.lower():
        part.unlink()  # resuming bad bytes cannot make them good
        raise ChecksumError(f"{url}: SHA-256 mismatch: expected {sha256.lower()}, got {actual}; "
                            f"the download was deleted and nothing was written to {dest}")


def checksum_report(path: str | os.PathLike) -> str:
    """One line for the scripts: the file's SHA-256, and whether it matches the value pinned in ``KNOWN_FILES``."""
    path = Path(path)
    actual, known = sha256sum(path), KNOWN_FILES.get(path.name)
    if known is None or known.sha256 is None:
        return f"SHA-256 {actual}  {path}  (no published hash to check against; keep this one to pin later copies)"
    verdict = "matches the pinned value" if actual == known.sha256 else f"DIFFERS from the pinned {known.sha256}"
    return f"SHA-256 {actual}  {path}  ({verdict})"


def rebase(url: str, base: str, default_base: str) -> str:
    """The same file on another server: the part of ``url``'s path below ``default_base``, appended to ``base``."""
    path, prefix = urllib.parse.urlparse(url).path, urllib.parse.urlparse(default_base).path
    if not path.startswith(prefix):
        raise ValueError(f"url {url!r} does not lie below {default_base!r}, so it cannot be moved to {base!r}")
    return base.rstrip("/") + path[len(prefix):]


def _fetch_known(name: str, out: Path, base: str, default_base: str, **options) -> Path:
    """Download a registry file into ``out``; its size and hash pin the official server's file, so apply there only."""
    known = KNOWN_FILES[name]
    url = rebase(known.url, base, default_base)
    pins = {"sha256": known.sha256, "size": known.size} if url == known.url else {}
    return download(url, out / name, **pins, **options)


# --------------------------------------------------------------------------------------------------- extraction

def extract(archive: str | os.PathLike, dest_dir: str | os.PathLike) -> list[Path]:
    """Unpack a .zip or .tar(.gz/.bz2/.xz) into ``dest_dir``; returns the top-level entries it made.

    Members that would land outside ``dest_dir`` (absolute paths, ``..``, links pointing out) raise
    :class:`UnsafeArchiveError` naming the member. Everything is unpacked into a hidden staging folder first and
    moved in only when all of it succeeded, so a failure leaves nothing half-extracted.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    unpack = _unpacker(archive)
    dest_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{archive.name}.", suffix=".partial", dir=dest_dir))
    try:
        unpack(archive, staging)
        return _move_into(staging, dest_dir, archive)
    except (tarfile.ReadError, zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise ValueError(f"{archive}: corrupt or truncated archive ({err}); nothing was extracted") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _unpacker(archive: Path):
    name = archive.name.lower()
    if name.endswith(".zip"):
        return _unpack_zip
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return _unpack_tar
    raise ValueError(f"extract: {archive} is neither a .zip nor a .tar(.gz/.bz2/.xz) archive")


def _move_into(staging: Path, dest_dir: Path, archive: Path) -> list[Path]:
    entries = sorted(staging.iterdir())
    clashes = [e.name for e in entries if os.path.lexists(dest_dir / e.name)]
    if clashes:
        raise FileExistsError(f"extracting {archive}: {clashes} already exist in {dest_dir}; "
                              f"remove them or extract elsewhere")
    for entry in entries:
        os.replace(entry, dest_dir / entry.name)
    return [dest_dir / e.name for e in entries]


def _member_path(root: Path, name: str, archive: Path) -> Path:
    """Where member ``name`` goes below ``root``; refuses absolute names and names that resolve outside ``root``."""
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; refusing to extract it")
    target = root / name.replace("\\", "/")
    _require_inside(root, target, archive, f"member {name!r}")
    return target


def _require_inside(root: Path, path: Path, archive: Path, what: str) -> None:
    # realpath follows the links already unpacked, so a chain of in-tree links cannot walk out either.
    real, top = os.path.realpath(path), os.path.realpath(root)
    if real != top and not real.startswith(top + os.sep):
        raise UnsafeArchiveError(f"{archive}: {what} would land outside the destination folder; refusing to extract")


def _check_link(root: Path, member: Path, name: str, link: str, archive: Path, hard: bool = False) -> None:
    """Symlinks resolve from the member's folder, hard links from the archive root; both must stay inside."""
    what = f"member {name!r} ({'hard link' if hard else 'symlink'} to {link!r})"
    if link.startswith(("/", "\\")) or PureWindowsPath(link).drive:
        raise UnsafeArchiveError(f"{archive}: {what} points to an absolute path; refusing to extract")
    _require_inside(root, (root if hard else member.parent) / link, archive, what)


def _unpack_zip(archive: Path, root: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = _member_path(root, info.filename, archive)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if (info.external_attr >> 16) & 0o170000 == 0o120000:  # a Unix symlink: its data is the target path
                link = zf.read(info).decode()
                _check_link(root, target, info.filename, link, archive)
                os.symlink(link, target)
                continue
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)


# The stdlib's own "data" filter (Python >= 3.11.4 / 3.10.12) also drops unsafe modes; older Pythons rely on ours.
_TAR_FILTER = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


def _unpack_tar(archive: Path, root: Path) -> None:
    # One forward pass (the MPII image archive is 12.9 GB), checking each member against what is already on disk.
    with tarfile.open(archive, "r:*") as tf:
        for member in tf:
            target = _member_path(root, member.name, archive)
            if member.issym() or member.islnk():
                _check_link(root, target, member.name, member.linkname, archive, hard=member.islnk())
            elif not (member.isfile() or member.isdir()):
                raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a device or fifo; refusing it")
            tf.extract(member, root, **_TAR_FILTER)


def _extract_member(archive: Path, member: str, dest: Path) -> Path:
    """Copy one member of a zip to ``dest`` through a temporary file in the same folder."""
    with zipfile.ZipFile(archive) as zf:
        if member not in zf.namelist():
            raise ValueError(f"{archive} has no member {member!r}; it holds {sorted(zf.namelist())[:10]}")
        with zf.open(member) as src:
            atomic_write(dest, lambda out: shutil.copyfileobj(src, out, 1 << 20))
    return dest


# ------------------------------------------------------------------------------------------------- COCO subset

def download_coco_subset(out_dir: str | os.PathLike, split: str = "val2017", num_images: int = 100, seed: int = 0,
                         min_keypoints: int = 1, *, annotations: str | os.PathLike | None = None,
                         base_url: str | None = None, workers: int = 4, progress: bool = True, retries: int = 3,
                         timeout: float = 30.0) -> Path:
    """Fetch ``num_images`` seeded COCO images with annotated people and write their annotations; returns the json.

    Writes ``out_dir/<split>/<file_name>`` and, last (so its presence means the subset is complete),
    ``out_dir/annotations/person_keypoints_<split>_subset.json``. ``annotations`` is an existing
    ``person_keypoints_<split>.json`` or ``annotations_trainval2017.zip``; without it the zip is downloaded into
    ``out_dir/downloads``. ``base_url`` (else ``$POSEBOOK_COCO_URL``, else images.cocodataset.org) names the server.
    """
    out_dir = Path(out_dir)
    base = base_url or os.environ.get(COCO_URL_ENV) or COCO_URL
    options = {"progress": progress, "retries": retries, "timeout": timeout}
    full = _coco_annotations(out_dir, split, annotations, base, options)
    data = read_coco(full, require=("keypoints", "num_keypoints"), plain_file_names=True)
    subset = coco_subset(data, num_images, seed, min_keypoints, source=full)
    urls = {img["id"]: _image_url(img, split, base) for img in subset["images"]}
    _download_images(subset["images"], urls, out_dir / split, workers, options)
    dest = out_dir / "annotations" / f"person_keypoints_{split}_subset.json"
    atomic_write(dest, lambda out: out.write(json.dumps(subset).encode()))
    return dest


def _coco_annotations(out_dir: Path, split: str, given, base: str, options: dict) -> Path:
    """The full ``person_keypoints_<split>.json``: given, already extracted, or extracted from the (downloaded) zip."""
    member = f"annotations/person_keypoints_{split}.json"
    if given is not None and not str(given).lower().endswith(".zip"):
        return Path(given)
    extracted = out_dir / member
    if given is None and extracted.exists():
        return extracted
    archive = Path(given) if given is not None else _fetch_known(
        "annotations_trainval2017.zip", out_dir / "downloads", base, COCO_URL, **options)
    return _extract_member(archive, member, extracted)


def _image_url(img: dict, split: str, base: str) -> str:
    if img.get("coco_url"):
        return rebase(img["coco_url"], base, COCO_URL)
    return f"{base.rstrip('/')}/{split}/{img['file_name']}"


def _download_images(images: list[dict], urls: dict, image_dir: Path, workers: int, options: dict) -> None:
    """Download every image (resumed and retried per file); one error at the end lists every image that failed."""
    per_file = {**options, "progress": False}
    failures = []
    with ThreadPoolExecutor(max(1, workers)) as pool, \
            tqdm(total=len(images), unit="img", desc=image_dir.name, disable=not options["progress"]) as bar:
        jobs = {pool.submit(download, urls[img["id"]], image_dir / img["file_name"], **per_file): img
                for img in images}
        for job in as_completed(jobs):
            if job.exception() is not None:
                failures.append(f"image id {jobs[job]['id']}: {job.exception()}")
            bar.update(1)
    if failures:
        raise DownloadError(f"{len(failures)} of {len(images)} images failed; a rerun resumes them:\n  "
                            + "\n  ".join(sorted(failures)[:10]))


# ---------------------------------------------------------------------------------------------------------- MPII

def download_mpii(out_dir: str | os.PathLike, images: bool = False, annotations: bool = True, *,
                  base_url: str | None = None, unpack: bool = True, progress: bool = True, retries: int = 3,
                  timeout: float = 30.0) -> dict[str, Path]:
    """Download the MPII archives into ``out_dir/downloads`` and unpack them into ``out_dir``; returns the archives.

    ``base_url`` (else ``$POSEBOOK_MPII_URL``, else the MPII site) names the server. An archive already unpacked
    (a ``<archive>.unpacked`` stamp beside it) is not unpacked again.
    """
    out_dir = Path(out_dir)
    base = base_url or os.environ.get(MPII_URL_ENV) or MPII_URL
    names = [n for n, wanted in (("mpii_human_pose_v1_u12_2.zip", annotations),
                                 ("mpii_human_pose_v1.tar.gz", images)) if wanted]
    if not names:
        raise ValueError("download_mpii: choose images=True and/or annotations=True")
    options = {"progress": progress, "retries": retries, "timeout": timeout}
    archives = {name: _fetch_known(name, out_dir / "downloads", base, MPII_URL, **options) for name in names}
    for archive in archives.values():
        stamp = archive.with_name(archive.name + ".unpacked")
        if unpack and not stamp.exists():
            extract(archive, out_dir)
            stamp.touch()
    return archives
