"""The chart of ``make bench-paper``: hand-written SVG (no plotting dependency).

Two panels of horizontal bars (mean, with a min–max whisker): NF start time — direct launch
vs through unlite, beside the paper's 154 / 727 ms — on a linear axis, and throughput
source → sink beside the paper's IPsec-client figures on a log axis (the IPsec client moves
hundreds of Mbit/s, the kernel-only NFs tens of Gbit/s).
"""
from __future__ import annotations

import math
from xml.sax.saxutils import escape

W, LABEL_W, RIGHT, ROW, GAP = 820, 300, 70, 20, 6
OURS, BASE, PAPER = "#2b6cb0", "#90cdf4", "#a0aec0"


def svg(results):
    start_rows, thr_rows = [], []
    for r in results:
        nf = r["nf"]
        start_rows.append((f"{nf}: start script, direct", r["direct_ms"], BASE))
        start_rows.append((f"{nf}: deploy via unlite (PUT → 201)", r["deploy_ms"], OURS))
        if r["kind"] == "ipsec":
            start_rows.append((f"{nf}: direct start → tunnel carries ping", r["direct_ready_ms"],
                               BASE))
            start_rows.append((f"{nf}: PUT → tunnel carries ping", r["ready_ms"], OURS))
        thr_rows.append((f"{nf} via unlite", r["mbps"], OURS))
    start_rows += [("paper: IPsec client launched directly", _fixed(154), PAPER),
                   ("paper: IPsec client NNF on the UN", _fixed(727), PAPER)]
    thr_rows += [("paper: server CPE NNF (IPsec)", _fixed(1094), PAPER),
                 ("paper: business CPE NNF (IPsec)", _fixed(617), PAPER),
                 ("paper: domestic CPE NNF (IPsec)", _fixed(57.2), PAPER)]
    parts, y = [], 10
    for i, (colour, what) in enumerate(((OURS, "this machine, through unlite"),
                                        (BASE, "this machine, launched directly"),
                                        (PAPER, "the paper (server CPE unless named)"))):
        parts.append(f'<rect x="{10 + 250 * i}" y="{y}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{28 + 250 * i}" y="{y + 11}">{escape(what)}</text>')
    y = _panel(parts, y + 22, "NF start time in ms (mean of the runs; whisker: min–max)",
               start_rows, log=False)
    y = _panel(parts, y + 24, "Throughput source → sink in Mbit/s, log scale (iperf3, 2 TCP "
               "streams; mean, min–max)", thr_rows, log=True)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{y + 10}" '
            f'viewBox="0 0 {W} {y + 10}" font-family="sans-serif" font-size="12">\n'
            f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(parts) + "\n</svg>\n")


def _fixed(v):
    return {"mean": v, "min": v, "max": v}


def _panel(parts, y, title, rows, log):
    parts.append(f'<text x="10" y="{y + 14}" font-weight="bold">{escape(title)}</text>')
    y += 24
    hi = max(r[1]["max"] for r in rows)
    lo = 10 ** math.floor(math.log10(min(r[1]["min"] for r in rows))) if log else 0.0
    if log:
        hi = 10 ** math.ceil(math.log10(hi))
        ticks = [10 ** e for e in range(round(math.log10(lo)), round(math.log10(hi)) + 1)]
    else:                                   # round steps: 1, 2 or 5 × 10^k, at most 6 ticks
        step = next(m * 10 ** e for e in range(-2, 9) for m in (1, 2, 5) if hi / (m * 10 ** e) <= 5)
        hi = step * math.ceil(hi / step)
        ticks = [step * i for i in range(round(hi / step) + 1)]
    x0, x1 = LABEL_W, W - RIGHT

    def x(v):
        if log:
            return x0 + (x1 - x0) * (math.log10(max(v, lo)) - math.log10(lo)) / \
                (math.log10(hi) - math.log10(lo))
        return x0 + (x1 - x0) * v / hi

    top = y
    for label, s, colour in rows:
        mid = y + ROW / 2
        parts.append(f'<text x="{x0 - 6}" y="{mid + 4}" text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect x="{x0}" y="{y + 2}" width="{max(1.0, x(s["mean"]) - x0):.1f}" '
                     f'height="{ROW - 4}" fill="{colour}"/>')
        if s["max"] > s["min"]:
            parts.append(f'<line x1="{x(s["min"]):.1f}" x2="{x(s["max"]):.1f}" y1="{mid}" '
                         f'y2="{mid}" stroke="black"/>')
            for v in (s["min"], s["max"]):
                parts.append(f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{mid - 4}" '
                             f'y2="{mid + 4}" stroke="black"/>')
        parts.append(f'<text x="{max(x(s["mean"]), x(s["max"])) + 4:.1f}" y="{mid + 4}">'
                     f'{_num(s["mean"])}</text>')
        y += ROW + GAP // 2
    parts.append(f'<line x1="{x0}" x2="{x0}" y1="{top}" y2="{y}" stroke="black"/>')
    for t in ticks:
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{y}" y2="{y + 4}" '
                     f'stroke="black"/>')
        parts.append(f'<text x="{x(t):.1f}" y="{y + 16}" text-anchor="middle">{_num(t)}</text>')
    parts.append(f'<line x1="{x0}" x2="{x1}" y1="{y}" y2="{y}" stroke="black"/>')
    return y + 22


def _num(v):
    if v >= 10000:
        return f"{v / 1000:.0f}k"
    if v >= 100 or v == int(v):
        return f"{v:.0f}"
    return f"{v:.1f}" if v >= 1 else f"{v:.2f}"
