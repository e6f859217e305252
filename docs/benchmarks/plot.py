#!/usr/bin/env python3
"""Draws the bench-peers plots from results.json (written by `testbench bench-peers`).

Usage: plot.py results.json OUTDIR
  -> OUTDIR/max_pps.png      highest rate under 0.1 % loss, per case and peer
  -> OUTDIR/throughput.png   delivered vs sent for every step, 64 B cases
  -> OUTDIR/latency_cdf.png  echo and DNS round-trip distributions
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {
    "direct": "direct (no LB)",
    "udplb-af-xdp": "udplb (net_af_xdp)",
    "udplb-af-packet": "udplb (net_af_packet)",
    "udplb-tap": "udplb (net_tap)",
    "nftables": "nftables DNAT",
    "nginx": "nginx stream",
    "dnsdist": "dnsdist",
}
ORDER = list(LABELS)


def peers(results):
    return sorted(results["peers"].items(), key=lambda kv: ORDER.index(kv[0])
                  if kv[0] in ORDER else len(ORDER))


def max_pps(results, out):
    cases = []
    for _, r in peers(results):
        for c in r.get("ladders", {}):
            if c not in cases:
                cases.append(c)
    if not cases:
        return
    echo = [(p, r) for p, r in peers(results) if r.get("ladders")]
    width = 0.8 / max(1, len(echo) + 1)
    fig, ax = plt.subplots(figsize=(12, 4.5))
    gen = results.get("generator", {}).get("cases", {})
    xs = range(len(cases))
    ax.bar([x - 0.4 + width / 2 for x in xs],
           [gen.get(c, {}).get("sent_pps", 0) / 1e3 for c in cases],
           width, label="generator alone", color="lightgrey")
    for i, (p, r) in enumerate(echo):
        vals = [(r["ladders"].get(c, {}).get("max_pps") or 0) / 1e3 for c in cases]
        ax.bar([x - 0.4 + width * (i + 1.5) for x in xs], vals, width,
               label=LABELS.get(p, p))
    ax.set_xticks(list(xs))
    ax.set_xticklabels(cases)
    ax.set_ylabel("kpps (new flows/s) with < 0.1 % loss")
    ax.set_title("highest rate with < 0.1 % loss (one vCPU for the system under test)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(f"{out}/max_pps.png", dpi=110)


def throughput(results, out):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, case in zip(axes, ["64B 1 flow", "64B 131k flows"]):
        for peer, r in peers(results):
            steps = r.get("ladders", {}).get(case, {}).get("steps", [])
            if not steps:
                continue
            steps = sorted(steps, key=lambda s: s["sent_pps"])
            xs = [s["sent_pps"] / 1e3 for s in steps]
            ys = [s["delivered_pps"] / 1e3 for s in steps]
            ax.plot(xs, ys, marker="o", label=LABELS.get(peer, peer))
        lim = max(ax.get_xlim()[1], ax.get_ylim()[1])
        ax.plot([0, lim], [0, lim], color="grey", linewidth=0.5, label="delivered = sent")
        ax.set_title(f"every step, {case}")
        ax.set_xlabel("sent by the generator (kpps)")
        ax.set_ylabel("delivered to the backends (kpps)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{out}/throughput.png", dpi=110)


def latency(results, out):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, key, title in [(axes[0], "echo_rr", "echo 64 B request/response"),
                           (axes[1], "dns_rr", "DNS whoami.test TXT")]:
        for peer, r in peers(results):
            rr = r.get(key)
            if not rr or not rr.get("cdf"):
                continue
            xs = [p[0] for p in rr["cdf"]]
            ys = [p[1] for p in rr["cdf"]]
            ax.plot(xs, ys, label=LABELS.get(peer, peer))
        ax.set_xscale("log")
        ax.set_title(f"latency CDF, {title}")
        ax.set_xlabel("round trip (µs, log)")
        ax.set_ylabel("fraction of requests ≤ x")
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{out}/latency_cdf.png", dpi=110)


def main():
    results = json.load(open(sys.argv[1]))
    out = sys.argv[2]
    max_pps(results, out)
    throughput(results, out)
    latency(results, out)


if __name__ == "__main__":
    main()
