"""Write a synthetic people dataset in COCO format: DIR/images/*.jpg and DIR/annotations.json.

    python data_scripts/make_synthetic.py --out data/synthetic --num 1000 --seed 0 --size 256x256 --max-people 4

Same arguments, same bytes. Prints a summary: images, people, keypoints labelled, share occluded, seconds.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from posebook.argtypes import input_size as _parse_size  # noqa: E402
from posebook.data.synthetic import occlusion_stats, write_coco  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    parser.add_argument("--num", required=True, type=int, help="number of images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=_parse_size, default=(256, 256), help="image size H x W, e.g. 256x256")
    parser.add_argument("--max-people", type=int, default=4, help="people per image: 1 to this many")
    parser.add_argument("--format", choices=("jpg", "png"), default="jpg")
    args = parser.parse_args(argv)
    if args.num < 1:
        parser.error(f"--num must be at least 1, got {args.num}")
    start = time.perf_counter()
    coco = write_coco(args.out, args.num, seed=args.seed, image_size=args.size, max_people=args.max_people,
                      image_format=args.format, progress=True)
    stats = occlusion_stats(coco["annotations"])
    print(f"wrote {args.out / 'annotations.json'}")
    print(f"images {len(coco['images'])}  people {stats['people']}  keypoints labelled {stats['labelled']}  "
          f"occluded {stats['occluded_share']:.1%}  seconds {time.perf_counter() - start:.1f}")


if __name__ == "__main__":
    main()
