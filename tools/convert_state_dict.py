#!/usr/bin/env python3
"""Re-save a PyTorch state_dict so that da_dist (libtorch 1.13) can read it.

`torch.save(model.state_dict(), path)` writes an OrderedDict carrying a
`_metadata` attribute, which libtorch 1.13's torch::pickle_load cannot
rebuild. This script loads the file on the CPU and saves the same tensors as
a plain dict {name: tensor}, which da::models::read_state_dict reads.

  python3 tools/convert_state_dict.py model.pth model.dict.pt
  python3 tools/convert_state_dict.py checkpoint.ckpt model.dict.pt --key state_dict --strip-prefix model.

--key picks the state_dict inside a checkpoint dict; --strip-prefix removes a
prefix from the names that have it (e.g. "model." of a Lightning module).
"""
import argparse
import sys

import torch


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="file written by torch.save")
    parser.add_argument("output", help="plain dict of tensors for da_dist")
    parser.add_argument("--key", help="entry of a checkpoint dict that holds the state_dict")
    parser.add_argument("--strip-prefix", default="", help="prefix removed from the names that start with it")
    args = parser.parse_args()

    state = torch.load(args.input, map_location="cpu", weights_only=True)
    if args.key is not None:
        state = state[args.key]
    if not isinstance(state, dict):
        sys.exit(f"{args.input}: expected a dict of tensors, found {type(state).__name__}")
    converted = {}
    for name, value in state.items():
        if not torch.is_tensor(value):
            sys.exit(f"{args.input}: entry {name!r} is a {type(value).__name__}, not a tensor (use --key?)")
        if args.strip_prefix and name.startswith(args.strip_prefix):
            name = name[len(args.strip_prefix):]
        converted[name] = value.detach().contiguous()
    torch.save(converted, args.output)
    print(f"wrote {len(converted)} tensors to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
