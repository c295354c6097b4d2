#!/usr/bin/env python3
"""Medians of a bench/ab.sh run: python3 bench/ab-summary.py < rounds.txt

Prints, for the authenticated read, the median rate and server CPU per read of each side, the
ratios of the medians, and the medians of each round's own new/old ratio."""
import re
import statistics
import sys

sides = {"old": {}, "new": {}}
line_re = re.compile(r"round (\d+) (old|new): healthz [\d.]+ [\d.]+us read ([\d.]+) ([\d.]+)us")
for line in sys.stdin:
    m = line_re.match(line)
    if m:
        sides[m.group(2)][int(m.group(1))] = (float(m.group(3)), float(m.group(4)))
rounds = sorted(set(sides["old"]) & set(sides["new"]))
if not rounds:
    sys.exit("no complete rounds in the input")
old = [sides["old"][r] for r in rounds]
new = [sides["new"][r] for r in rounds]
rate = (statistics.median(x[0] for x in old), statistics.median(x[0] for x in new))
cpu = (statistics.median(x[1] for x in old), statistics.median(x[1] for x in new))
print(f"{len(rounds)} rounds")
print(f"read rate  old {rate[0]:.0f}/s  new {rate[1]:.0f}/s  new/old {rate[1] / rate[0]:.3f}")
print(f"CPU/read   old {cpu[0]:.2f}us  new {cpu[1]:.2f}us  new/old {cpu[1] / cpu[0]:.3f}")
paired_rate = statistics.median(n[0] / o[0] for o, n in zip(old, new))
paired_cpu = statistics.median(n[1] / o[1] for o, n in zip(old, new))
print(f"paired medians: rate {paired_rate:.3f}, CPU {paired_cpu:.3f}")
