"""Download COCO 2017 person-keypoint annotations and a seeded subset of person images, by their coco_url.

    python data_scripts/download_coco.py --out data/coco --split val2017 --num-images 200

This script (with download_mpii.py) is the only code in posebook that reaches the network, and only when run.
Partial files resume on a rerun. Writes OUT/<split>/*.jpg and OUT/annotations/person_keypoints_<split>_subset.json.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from posebook.data import download as dl
from posebook.data.cocofile import read_coco


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--split", default="val2017", choices=("val2017", "train2017"), help="COCO split")
    parser.add_argument("--num-images", type=int, default=100, help="how many images with annotated people")
    parser.add_argument("--seed", type=int, default=0, help="seed of the image choice")
    parser.add_argument("--min-keypoints", type=int, default=1,
                        help="an image qualifies if one non-crowd person has at least this many labelled keypoints")
    parser.add_argument("--annotations", help="an existing person_keypoints_<split>.json or annotations_trainval2017"
                                              ".zip (otherwise the 241 MB zip is downloaded into OUT/downloads)")
    parser.add_argument("--base-url", help=f"server to fetch from (default ${dl.COCO_URL_ENV}, else {dl.COCO_URL})")
    parser.add_argument("--workers", type=int, default=4, help="parallel image downloads")
    parser.add_argument("--retries", type=int, default=3, help="resumed retries per file after a broken transfer")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds without data before a retry")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        subset = dl.download_coco_subset(
            args.out, args.split, args.num_images, args.seed, args.min_keypoints, annotations=args.annotations,
            base_url=args.base_url, workers=args.workers, progress=not args.no_progress, retries=args.retries,
            timeout=args.timeout)
    except (OSError, ValueError) as err:
        print(f"download_coco: error: {err}", file=sys.stderr)
        return 1
    data = read_coco(subset)
    print(f"{len(data['images'])} images, {len(data['annotations'])} person annotations -> {subset}")
    archive = Path(args.out) / "downloads" / "annotations_trainval2017.zip"
    if archive.exists():
        print(dl.checksum_report(archive))
    return 0


if __name__ == "__main__":
    sys.exit(main())
