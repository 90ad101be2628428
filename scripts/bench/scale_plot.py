#!/usr/bin/env python3
"""Draws the scale curves (docs/scale.png) from the CSV `cargo bench --bench scale` prints.

Usage: cargo bench --bench scale > scale.csv && scripts/bench/scale_plot.py scale.csv docs/scale.png
Needs matplotlib (pip install matplotlib).
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    with open(src) as f:
        rows = [r for r in csv.DictReader(f) if r.get("scale")]
    x = [int(r["applied"]) for r in rows]
    col = lambda k: [float(r[k]) for r in rows]  # noqa: E731
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ax = axes[0]
    for k, label in [
        ("snapshot_build_s", "snapshot build"),
        ("transfer_s", "transfer (chunks, no network)"),
        ("install_s", "install"),
        ("reopen_s", "reopen (restart)"),
    ]:
        ax.plot(x, col(k), marker="o", label=label)
    ax.set_title("snapshot and restart (s)")
    ax2 = axes[1]
    for k, label in [
        ("read_us", "revocation read"),
        ("write_bare_us", "write, no subscription"),
        ("write_us", "write, with subscriptions"),
    ]:
        ax2.plot(x, col(k), marker="o", label=label)
    ax2.set_title("median apply / read (µs, no fsync)")
    ax3 = axes[2]
    ax3.plot(x, col("rss_built_mib"), marker="o", label="RSS, state built")
    ax3.plot(x, col("peak_rss_mib"), marker="o", label="peak RSS (with a second state installed)")
    ax3.plot(x, [int(r["snapshot_bytes"]) / 2**20 for r in rows], marker="o", label="snapshot file")
    ax3.set_title("memory and size (MiB)")
    for a in (ax, ax2, ax3):
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel("applied commands (state size)")
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle("sealkm state machine costs against state size (benches/scale.rs)")
    fig.tight_layout()
    fig.savefig(dst, dpi=90)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
