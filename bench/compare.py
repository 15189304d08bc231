#!/usr/bin/env python3
"""Runs spinemark's benchmark and the PyTorch peer (../shared/bench/peer_torch.py) alternately,
in one run on the same machine, and prints median times and ratios (ours / peer; < 1 is faster).

    python3 bench/compare.py --rounds 3 --threads 2 --model all
        [--spinemark build/bin/spinemark] [--peer ../shared/bench/peer_torch.py] [--python /usr/bin/python3]

Developer tool: needs a Python with torch for the peer (Debian: python3-torch); spinemark itself
never needs Python. Both programs print JSON lines with the same keys; rounds alternate the two
so that a slow spell of a shared machine hits both.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def key(r):
    if r["bench"] == "conv3x3":
        return ("conv3x3", "C%d %dx%d" % (r["C"], r["H"], r["W"]))
    if "model" not in r or "median_s" not in r:
        return None  # environment or profile records
    return (r["bench"], r["model"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--model", default="all")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--spinemark", default=os.path.join(HERE, "..", "build", "bin", "spinemark"))
    ap.add_argument("--peer", default=os.path.join(HERE, "..", "..", "shared", "bench", "peer_torch.py"))
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--json", help="also write every raw record here (JSON lines)")
    a = ap.parse_args()
    common = ["--threads", str(a.threads), "--steps", str(a.steps), "--model", a.model, "--device", a.device]
    ours, peer, raw = {}, {}, []
    for r in range(a.rounds):
        for name, cmd, dest in (("spinemark", [a.spinemark, "bench"] + common, ours),
                                ("torch", [a.python, a.peer] + common, peer)):
            print("round %d/%d: %s" % (r + 1, a.rounds, name), file=sys.stderr, flush=True)
            for rec in run(cmd):
                rec["round"], rec["engine"] = r, name
                raw.append(rec)
                if key(rec) is None:
                    continue
                t = rec["median_s"] if "median_s" in rec else rec["fwdbwd_ms"] / 1e3
                dest.setdefault(key(rec), []).append(t)
    if a.json:
        with open(a.json, "w") as f:
            for rec in raw:
                f.write(json.dumps(rec) + "\n")
    print("%-12s %-12s %12s %12s %8s" % ("bench", "case", "spinemark s", "torch s", "ratio"))
    for k in sorted(ours, key=lambda k: (k[0], k[1])):
        if k not in peer:
            continue
        o, p = statistics.median(ours[k]), statistics.median(peer[k])
        print("%-12s %-12s %12.4f %12.4f %8.2f" % (k[0], k[1], o, p, o / p))
    print("(medians over %d alternating rounds, %d threads; ratio = spinemark / torch, < 1 is faster)" % (a.rounds, a.threads))


if __name__ == "__main__":
    main()
