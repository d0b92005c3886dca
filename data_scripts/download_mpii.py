"""Download the MPII Human Pose archives (annotations 12.5 MB, images 12.9 GB) and unpack them.

    python data_scripts/download_mpii.py --out data/mpii --annotations
    python data_scripts/download_mpii.py --out data/mpii --images --annotations

This script (with download_coco.py) is the only code in posebook that reaches the network, and only when run.
Archives go to OUT/downloads (a rerun resumes a partial one) and unpack into OUT. MPII publishes no checksums:
the script prints the SHA-256 of each archive so you can pin it.
"""
from __future__ import annotations

import argparse
import sys

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
    args = parser.parse_args(argv)
    if not (args.images or args.annotations):
        parser.error("say what to download: --annotations, --images, or both")
    return args


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
