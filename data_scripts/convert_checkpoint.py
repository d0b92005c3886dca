"""Convert an official or MMPose HRNet / SimpleBaseline checkpoint into a posebook state_dict.

    python data_scripts/convert_checkpoint.py pose_hrnet_w32_256x192.pth hrnet_w32.pt --arch hrnet_w32
    python data_scripts/convert_checkpoint.py hrnet_w32_coco_256x192-c78dce93_20200708.pth hrnet_w32.pt --arch hrnet_w32
    python data_scripts/convert_checkpoint.py pose_resnet_50_256x192.pth sb_r50.pt --arch simple_baseline --arg depth=50

The input is read with torch.load(weights_only=True); the output is written atomically (temporary file, then
os.replace) and only after the weights have loaded strictly into the posebook model. Explained in chapter 07.
"""
from __future__ import annotations

import argparse
import sys

from posebook.bench import _parse_kwargs, count_params  # the same key=value parsing as bench's --arg
from posebook.weights import CheckpointError, convert


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="official or MMPose checkpoint (.pth)")
    parser.add_argument("target", help="where to write the posebook state_dict")
    parser.add_argument("--arch", required=True, help="a name of posebook.models.MODELS, e.g. hrnet_w32, hrnet_w48, "
                                                      "simple_baseline")
    parser.add_argument("--arg", action="append", default=[], help="constructor argument key=value, e.g. depth=101")
    args = parser.parse_args(argv)
    try:
        model = convert(args.source, args.target, args.arch, **_parse_kwargs(args.arg))
    except (CheckpointError, FileNotFoundError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.target}: {args.arch}, {len(model.state_dict())} tensors, {count_params(model):,} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
