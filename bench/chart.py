#!/usr/bin/env python3
"""The watch fan-out chart of bench/run.sh: cost against scale, as an SVG (standard library only).

    bench/chart.py bench/results/RUN.md OUT.svg

Reads the `N watches (h1|h2): ...` lines of a run's results (section 7). Two panels, both
against the number of watchers on a logarithmic axis: the server's CPU per delivered event, and
the p99 write-to-delivery time (logarithmic) with the 50 ms target.
"""
import math
import re
import sys

LINE = re.compile(r"^(\d+) watches \((h1|h2)\):.* p99=([0-9.]+)ms .*server-cpu=([0-9.]+)us/event")

W, H = 420, 300          # one panel
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 40, 50
COLORS = {"h1": "#1f77b4", "h2": "#d62728"}
NAMES = {"h1": "HTTP/1.1 chunked", "h2": "HTTP/2 streams"}


def panel(x0, title, ylabel, series, xs, target=None, logy=False):
    """One panel's SVG elements: axes, ticks, a line per series, and an optional target line."""
    ys = [y for points in series.values() for _, y in points] + ([target] if target else [])
    ymax = max(ys) * 1.15 if ys and max(ys) > 0 else 1.0
    ymin = min(y for y in ys if y > 0) / 1.5 if logy and any(y > 0 for y in ys) else 0.0
    lo, hi = math.log10(min(xs)), math.log10(max(xs))
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x):
        return x0 + LEFT + (math.log10(x) - lo) / (hi - lo) * pw

    def py(y):
        if logy:
            span = math.log10(ymax) - math.log10(ymin)
            return TOP + ph - (math.log10(max(y, ymin)) - math.log10(ymin)) / span * ph
        return TOP + ph - y / ymax * ph

    out = [f'<text x="{x0 + W / 2}" y="20" text-anchor="middle" font-weight="bold">{title}</text>',
           f'<line x1="{x0 + LEFT}" y1="{TOP + ph}" x2="{x0 + LEFT + pw}" y2="{TOP + ph}" stroke="black"/>',
           f'<line x1="{x0 + LEFT}" y1="{TOP}" x2="{x0 + LEFT}" y2="{TOP + ph}" stroke="black"/>',
           f'<text x="{x0 + LEFT + pw / 2}" y="{H - 10}" text-anchor="middle">watchers</text>',
           f'<text x="{x0 + 14}" y="{TOP + ph / 2}" text-anchor="middle" '
           f'transform="rotate(-90 {x0 + 14} {TOP + ph / 2})">{ylabel}</text>']
    for x in sorted(set(xs)):
        out.append(f'<text x="{px(x)}" y="{TOP + ph + 16}" text-anchor="middle">{x:g}</text>')
    for i in range(5):
        y = ymin * (ymax / ymin) ** (i / 4) if logy else ymax * i / 4
        out.append(f'<text x="{x0 + LEFT - 6}" y="{py(y) + 4}" text-anchor="end">{y:.3g}</text>')
        out.append(f'<line x1="{x0 + LEFT}" y1="{py(y)}" x2="{x0 + LEFT + pw}" y2="{py(y)}" stroke="#ddd"/>')
    if target:
        out.append(f'<line x1="{x0 + LEFT}" y1="{py(target)}" x2="{x0 + LEFT + pw}" y2="{py(target)}" '
                   f'stroke="green" stroke-dasharray="6 4"/>')
        out.append(f'<text x="{x0 + LEFT + pw - 4}" y="{py(target) - 4}" text-anchor="end" fill="green">target</text>')
    for name, points in series.items():
        points = sorted(points)
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{COLORS.get(name, "black")}" stroke-width="2"/>')
        for x, y in points:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{COLORS.get(name, "black")}"/>')
    return out


def main():
    rows = [LINE.match(line) for line in open(sys.argv[1]).read().splitlines()]
    cpu, p99 = {}, {}
    for n, transport, latency, micros in (m.groups() for m in rows if m):
        cpu.setdefault(transport, []).append((float(n), float(micros)))
        p99.setdefault(transport, []).append((float(n), float(latency)))
    xs = [x for points in cpu.values() for x, _ in points] or [1.0]
    body = panel(0, "Server CPU per delivered event", "µs", cpu, xs)
    body += panel(W, "p99 write-to-delivery (log scale)", "ms", p99, xs, target=50.0, logy=True)
    for i, name in enumerate(sorted(cpu)):
        y = H + 14 + 18 * i
        body.append(f'<rect x="{LEFT}" y="{y - 10}" width="14" height="4" fill="{COLORS.get(name, "black")}"/>')
        body.append(f'<text x="{LEFT + 20}" y="{y - 4}">{NAMES.get(name, name)}</text>')
    height = H + 20 + 18 * len(cpu)
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{height}" '
           f'font-family="sans-serif" font-size="12">\n<rect width="100%" height="100%" fill="white"/>\n'
           + "\n".join(body) + "\n</svg>\n")
    with open(sys.argv[2], "w") as f:
        f.write(svg)


if __name__ == "__main__":
    main()
