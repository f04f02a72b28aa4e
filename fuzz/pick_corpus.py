#!/usr/bin/env python3
"""Picks the small corpus checked in under corpus/TARGET (at most 28 files, 95 KB): greedily,
the inputs that cover the most coverage edges not yet covered, from a libFuzzer merge control
file. `cargo fuzz cmin` alone keeps every input that adds a feature (about 60 here).

    T=snapshot_decoder; B=target/x86_64-unknown-linux-gnu/release/$T
    mkdir -p /tmp/empty && $B -merge=1 -merge_control_file=/tmp/ctl -use_counters=0 /tmp/empty corpus/$T
    python3 pick_corpus.py /tmp/ctl > /tmp/keep   # the paths to keep; delete the others
"""
import os
import sys

LIMIT, BUDGET = 28, 95_000

lines = open(sys.argv[1]).read().split("\n")
count = int(lines[0])
names = lines[2 : 2 + count]
edges = {}
for line in lines[2 + count :]:
    fields = line.split()
    if fields and fields[0] == "COV":
        edges[int(fields[1])] = set(fields[2:])
chosen, covered, size = [], set(), 0
while len(chosen) < LIMIT:
    fits = [i for i in edges if i not in chosen and size + os.path.getsize(names[i]) <= BUDGET]
    best = max(fits, key=lambda i: (len(edges[i] - covered), -os.path.getsize(names[i])), default=None)
    if best is None or not edges[best] - covered:
        break
    chosen.append(best)
    covered |= edges[best]
    size += os.path.getsize(names[best])
total = len(set().union(*edges.values())) if edges else 0
print(f"{len(chosen)} files, {size} bytes, {len(covered)} of {total} edges", file=sys.stderr)
print("\n".join(names[i] for i in chosen))
