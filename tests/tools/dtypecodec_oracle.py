"""Oracle for ifs::ckpt's element decoder (checkpoint/dtypecodec.h, tst_dtypecodec): what PyTorch
makes of every float16 and bfloat16 bit pattern, and a checkpoint of numpy float16 scalars.

Usage:
  dtypecodec_oracle.py decode DIR
      Writes DIR/float16.bin and DIR/bfloat16.bin: for each of the 65536 bit patterns, in order,
      the float32 bits (little-endian uint32) that x.float() gives for a contiguous 1-D tensor of
      them (what a model's parameters are). Prints JSON {dtype: {"nan", "inf", "zeros", "min",
      "max"}}: torch's counts of NaN, ±Inf and zeros among the 65536 values, and the finite
      minimum and maximum, as float64.
  dtypecodec_oracle.py scalars FILE
      torch.save()s {"h": [numpy.float16 scalars: NaN, ±Inf, subnormals, ±0, the largest]} to
      FILE (a pickle that holds numpy scalars, not tensors). Prints JSON [[float16 bits, repr of
      float(x)], ...] in the same order.
"""
import json
import math
import os
import sys

import numpy as np
import torch


def all_patterns(dtype):
    bits = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16)
    return torch.from_numpy(bits.copy()).view(dtype)


def cmd_decode(folder):
    summary = {}
    for name, dtype in (("float16", torch.float16), ("bfloat16", torch.bfloat16)):
        values = all_patterns(dtype).float()
        values.view(torch.int32).numpy().astype("<u4").tofile(os.path.join(folder, name + ".bin"))
        finite = values[torch.isfinite(values)].double()
        summary[name] = {
            "nan": int(torch.isnan(values).sum()),
            "inf": int(torch.isinf(values).sum()),
            "zeros": int((values == 0).sum()),
            "min": finite.min().item(),
            "max": finite.max().item(),
        }
    print(json.dumps(summary))


SCALAR_BITS = [
    0x7E00,  # quiet NaN
    0xFE01,  # negative NaN with a payload
    0x7C01,  # signalling NaN
    0x7C00,  # +Inf
    0xFC00,  # -Inf
    0x0001,  # the smallest subnormal, 2^-24
    0x83FF,  # the largest negative subnormal
    0x0400,  # the smallest normal
    0x8000,  # -0
    0x0000,  # +0
    0x7BFF,  # 65504, the largest
    0x3C00,  # 1
]


def cmd_scalars(path):
    scalars = [np.array([b], dtype=np.uint16).view(np.float16)[0] for b in SCALAR_BITS]
    torch.save({"h": scalars}, path)
    out = []
    for bits, scalar in zip(SCALAR_BITS, scalars):
        value = float(scalar)
        out.append([bits, "nan" if math.isnan(value) else repr(value)])
    print(json.dumps(out))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("decode", "scalars"):
        sys.exit(__doc__)
    {"decode": cmd_decode, "scalars": cmd_scalars}[sys.argv[1]](sys.argv[2])


if __name__ == "__main__":
    main()
