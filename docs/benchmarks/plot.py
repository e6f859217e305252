#!/usr/bin/env python3
"""Draws the bench-peers plots from results.json (written by `testbench bench-peers`).

Usage: plot.py results.json OUTDIR -> OUTDIR/throughput.png, OUTDIR/latency_cdf.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {
    "direct": "direct (no LB)",
    "udplb": "udplb",
    "nginx": "nginx stream",
    "nftables": "nftables DNAT",
    "dnsdist": "dnsdist",
}


def offered(step, _ceiling):
    # What the generator actually sent: on 2 shared vCPUs it may fall short of the rate
    # asked for, and the unpaced step has no rate.
    return step["sent_pps"]


def main():
    results = json.load(open(sys.argv[1]))
    out = sys.argv[2]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, case in zip(axes, ["64B few", "64B many"]):
        for peer, r in results["peers"].items():
            steps = r.get("ladders", {}).get(case, {}).get("steps", [])
            if not steps:
                continue
            xs = [offered(s, None) / 1e3 for s in steps]
            ys = [s["delivered_pps"] / 1e3 for s in steps]
            ax.plot(xs, ys, marker="o", label=LABELS.get(peer, peer))
        if case == "64B few":
            steps = results.get("dpdk", {}).get("io", {}).get("steps", [])
            if steps:
                ax.plot([offered(s, None) / 1e3 for s in steps],
                        [s["delivered_pps"] / 1e3 for s in steps],
                        marker="x", linestyle="--", label="testpmd io (net_tap)")
        lim = max(ax.get_xlim()[1], ax.get_ylim()[1])
        ax.plot([0, lim], [0, lim], color="grey", linewidth=0.5, label="offered = delivered")
        ax.set_title(f"throughput, {case} flows")
        ax.set_xlabel("offered load: sent by the generator (kpps)")
        ax.set_ylabel("delivered to backends (kpps)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{out}/throughput.png", dpi=110)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, key, title in [(axes[0], "echo_rr", "echo 64 B request/response"),
                           (axes[1], "dns_rr", "DNS whoami.test TXT")]:
        for peer, r in results["peers"].items():
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


if __name__ == "__main__":
    main()
