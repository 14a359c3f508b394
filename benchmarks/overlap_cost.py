"""What the same-audio-across-a-split check costs: load the keyword data, then time the check alone.

Loads the keyword dataset exactly as ``speechcommands_rnn.py train`` does (its own flags, so the
split is the script's), then runs :func:`audiolab.data.splits.refuse_overlap` once more on the clips
already in memory and prints the CPU and wall seconds of both (issue 28, experiments/reliability.md).

    python benchmarks/overlap_cost.py --data-root ../shared/data --dataset speech_commands
"""
from __future__ import annotations

import sys
import time

import speechcommands_rnn
from audiolab.data import keywords, splits


def main(argv: list[str]) -> None:
    args = speechcommands_rnn.parse_args(argv)
    wall, cpu = time.perf_counter(), time.process_time()
    data = keywords.load_keywords(args)  # includes the check itself
    print(f"load_keywords: {len(data.clips)} clips, {time.perf_counter() - wall:.2f} s wall, "
          f"{time.process_time() - cpu:.2f} s CPU")
    wall, cpu = time.perf_counter(), time.process_time()
    n = splits.refuse_overlap(((c.path, c.wav) for c in data.split("train")),
                              ((c.path, c.wav) for c in data.clips if c.split != "train"), allow=True)
    print(f"refuse_overlap alone: {time.perf_counter() - wall:.3f} s wall, {time.process_time() - cpu:.3f} s CPU, "
          f"{n} overlapping clips")


if __name__ == "__main__":
    main(sys.argv[1:])
