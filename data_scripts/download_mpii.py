"""Download the MPII Human Pose archives (annotations 12.5 MB, images 12.9 GB) and unpack them.

    python data_scripts/download_mpii.py --out data/mpii --annotations
    python data_scripts/download_mpii.py --out data/mpii --images --annotations
    python data_scripts/download_mpii.py --out data/mpii --annotations --convert [--valid-images names.txt]

This script (with download_coco.py) is the only code in posebook that reaches the network, and only when run.
Archives go to OUT/downloads (a rerun resumes a partial one) and unpack into OUT. MPII publishes no checksums:
the script prints the SHA-256 of each archive so you can pin it. ``--convert`` (needs scipy) turns the official
.mat into HRNet-style train.json / valid.json / trainval.json beside it, for ``posebook.data.MpiiKeypoints``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from posebook.data import download as dl


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--images", action="store_true", help="download mpii_human_pose_v1.tar.gz (12.9 GB)")
    parser.add_argument("--annotations", action="store_true", help="download mpii_human_pose_v1_u12_2.zip (.mat)")
    parser.add_argument("--base-url", help=f"server to fetch from (default ${dl.MPII_URL_ENV}, else {dl.MPII_URL})")
    parser.add_argument("--no-unpack", action="store_true", help="keep the archives packed")
    parser.add_argument("--retries", type=int, default=3, help="resumed retries per file after a broken transfer")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds without data before a retry")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--convert", action="store_true",
                        help="after unpacking, write train/valid/trainval.json (HRNet style) beside the .mat")
    parser.add_argument("--valid-images", metavar="FILE",
                        help="validation images or people, one per line: an image name, or 'annolist annorect' "
                             "(1-based; e.g. the standard Tompson et al. split); "
                             "default: a seeded 12%% hold-out of training images, NOT the standard split")
    parser.add_argument("--seed", type=int, default=0, help="seed of the default validation hold-out")
    args = parser.parse_args(argv)
    if not (args.images or args.annotations):
        parser.error("say what to download: --annotations, --images, or both")
    if args.convert and (args.no_unpack or not args.annotations):
        parser.error("--convert needs the unpacked annotations: add --annotations, drop --no-unpack")
    if args.valid_images and not args.convert:
        parser.error("--valid-images chooses the split of --convert: add --convert")
    return args


def read_names(path: str) -> list:
    """Validation entries from a text file, one per line: an image name, or two 1-based numbers "annolist annorect"
    (one person); blank lines and # comments are ignored."""
    lines = [line.split() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    entries = [words for words in lines if words and not words[0].startswith("#")]
    return [tuple(int(w) for w in words) if all(w.isdigit() for w in words) else " ".join(words)
            for words in entries]


def convert(out: str, valid_images: str | None, seed: int) -> None:
    """Convert the unpacked mpii_human_pose_v1_u12_1.mat and print what was written and skipped."""
    from posebook.data import mpii_mat

    found = sorted(Path(out).glob(f"*/{mpii_mat.MAT_NAME}")) or sorted(Path(out).glob(mpii_mat.MAT_NAME))
    if not found:
        raise FileNotFoundError(f"no {mpii_mat.MAT_NAME} under {out}: was the annotation archive unpacked?")
    records = mpii_mat.load_mpii_mat(found[0])
    names = read_names(valid_images) if valid_images else None
    paths = mpii_mat.write_splits(records, found[0].parent, names, seed)
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(records.skipped.items())) or "none"
    print(f"converted {found[0]}: {len(records)} labelled people; skipped rects: {skipped}")
    if names is None:
        print("validation: a seeded hold-out of training images, NOT the standard (Tompson et al.) split")
    for name, path in paths.items():
        print(f"  {name}: {path}")


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        archives = dl.download_mpii(args.out, images=args.images, annotations=args.annotations,
                                    base_url=args.base_url, unpack=not args.no_unpack,
                                    progress=not args.no_progress, retries=args.retries, timeout=args.timeout)
    except (OSError, ValueError) as err:
        print(f"download_mpii: error: {err}", file=sys.stderr)
        return 1
    for archive in archives.values():
        print(dl.checksum_report(archive))
    print(f"unpacked into {args.out}" if not args.no_unpack else f"archives kept packed in {args.out}/downloads")
    if args.convert:
        try:
            convert(args.out, args.valid_images, args.seed)
        except (OSError, ValueError, ImportError) as err:
            print(f"download_mpii: convert: error: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
