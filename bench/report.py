#!/usr/bin/env python3
"""Writes the generated part of bench/RESULTS.md from the latest benchmark outputs.

Inputs (all optional; a missing one leaves its section out):

* criterion's ``<target>/criterion/**/new/{benchmark,estimates}.json`` (``cargo bench --bench core``);
* ``build/bench/core-bench.txt``: the bench's stdout, for its ``MEMORY`` lines;
* ``build/bench/bridge.json``: ``bench/lua/bridge_bench.lua --json``;
* ``build/bench/e2e.json``: ``bench/e2e.py``.

Only the text between ``<!-- BEGIN GENERATED -->`` and ``<!-- END GENERATED -->`` is
replaced; the hand-written analysis around it stays.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- BEGIN GENERATED (bench/report.py) -->", "<!-- END GENERATED -->"

# Targets of issue 7.
T_DELIVERY, T_DELIVERY_FLOOR = 0.9, 1.1
T_LATE = 0.3
T_CROSSING_US = 2.0
T_RSS = 1.2
T_CACHE_KIB = 64


def load_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def criterion_results(root: Path) -> dict[str, dict]:
    out = {}
    for bj in root.glob("**/new/benchmark.json"):
        est = load_json(bj.parent / "estimates.json")
        meta = load_json(bj)
        if not est or not meta:
            continue
        out[meta["full_id"]] = {
            "median_ns": est["median"]["point_estimate"],
            "mad_ns": est["median_abs_dev"]["point_estimate"],
            "mtime": bj.stat().st_mtime,
        }
    return out


def memory_lines(path: Path) -> dict[str, dict[str, str]]:
    out = {}
    try:
        text = path.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        if not line.startswith("MEMORY "):
            continue
        fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
        key = next(iter(fields))
        out[key] = fields
    return out


def fmt_time(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.1f} ns"


def fmt_spread(s, digits=2, unit=""):
    if not s:
        return "—"
    return f"{s['median']:.{digits}f}{unit} ({s['min']:.{digits}f}..{s['max']:.{digits}f})"


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("**met**" if ok else "**missed**")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    p.add_argument("--criterion-dir", default=str(target / "criterion"))
    p.add_argument("--core-out", default=str(REPO / "build" / "bench" / "core-bench.txt"))
    p.add_argument("--bridge", default=str(REPO / "build" / "bench" / "bridge.json"))
    p.add_argument("--e2e", default=str(REPO / "build" / "bench" / "e2e.json"))
    p.add_argument("--results", default=str(REPO / "bench" / "RESULTS.md"))
    p.add_argument("--command", default="make bench", help="the command that reproduces the figures")
    p.add_argument("--commit", default=None, help="the source version measured (default: git describe)")
    args = p.parse_args()
    if args.commit is None:
        try:
            head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                  text=True, check=True).stdout.strip()
            dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True).stdout.strip()
            args.commit = head + (" with uncommitted changes" if dirty else "")
        except (OSError, subprocess.CalledProcessError):
            args.commit = "unknown"

    crit = criterion_results(Path(args.criterion_dir))
    mem = memory_lines(Path(args.core_out))
    bridge = load_json(Path(args.bridge))
    e2e = load_json(Path(args.e2e))

    L: list[str] = []
    w = L.append
    w(BEGIN)
    w("")
    w(f"Generated {time.strftime('%Y-%m-%d %H:%M %Z')} by `bench/report.py` for source version {args.commit}; "
      f"reproduce with `{args.command}`.")
    if e2e:
        meta = e2e["meta"]
        w(f"End-to-end run: `{meta['command']}` on {meta['cpus']} CPUs, {meta['duration_s']:.0f} s, {meta['date']}.")
    w("")

    # ---------------------------------------------------------------- targets
    targets = []
    medium = None
    if e2e:
        by_size = {r["size"]: r for r in e2e["results"]}
        medium = by_size.get("medium") or (e2e["results"][-1] if e2e["results"] else None)
    if medium:
        s = medium["summary"]
        r = s["cpu_per_delivery_us"]["ratio"]
        targets.append((
            f"CPU per delivered groupchat, module/plain ({medium['size']})",
            f"≤ {T_DELIVERY}× (floor ≤ {T_DELIVERY_FLOOR}×)",
            fmt_spread(r, 2, "×"),
            None if not r else (r["median"] <= T_DELIVERY if r["median"] <= T_DELIVERY else
                                (False if r["median"] > T_DELIVERY_FLOOR else None)),
        ))
        if r and T_DELIVERY < r["median"] <= T_DELIVERY_FLOOR:
            targets[-1] = targets[-1][:3] + ("floor met, target missed",)
        late = s["late_cpu_ms"]["ratio"]
        targets.append((
            f"CPU per late attach / plain session join into the same room ({medium['size']})",
            f"≤ {T_LATE}×", fmt_spread(late, 2, "×"), None if not late else late["median"] <= T_LATE,
        ))
        rss = s["rss_mib"]["ratio"]
        targets.append((
            f"Prosody RSS, module/plain ({medium['size']})", f"≤ {T_RSS}×", fmt_spread(rss, 2, "×"),
            None if not rss else rss["median"] <= T_RSS,
        ))
    if bridge:
        res = bridge["results"]
        for name, label in (("room_message_untracked", "crossing: h:room_message, untracked room (fast path)"),
                            ("client_message_untracked", "crossing: h:client_message to a contact (fast path)"),
                            ("room_message_tracked", "crossing: h:room_message, tracked room, S=3")):
            if name in res:
                us = res[name]["us"]
                targets.append((label, f"≤ {T_CROSSING_US} µs", f"{us:.2f} µs", us <= T_CROSSING_US))
    for key, what, tgt in (
        ("account_room_shared_100_accounts_occupants_100_history_0_mean_bytes",
         "cached state of one (account, room), 100 occupants, no history; 100 accounts in the room (mean)",
         f"≤ {T_CACHE_KIB} KiB"),
        ("account_room_occupants_100_history_0_bytes",
         "… the same account alone in the room (it holds every shared stanza itself)", f"≤ {T_CACHE_KIB} KiB"),
        ("account_room_shared_100_accounts_occupants_100_history_100_mean_bytes",
         "… with the default 100 messages of history, 100 accounts (mean)", f"(≤ {T_CACHE_KIB} KiB)"),
        ("account_room_occupants_100_history_100_bytes",
         "… with 100 messages of history, alone", f"(≤ {T_CACHE_KIB} KiB)"),
    ):
        if key in mem:
            kib = int(mem[key][key]) / 1024
            targets.append((what, tgt, f"{kib:.0f} KiB", kib <= T_CACHE_KIB))
    if targets:
        w("### Targets (issue 7)")
        w("")
        w("| what | target | measured: median (min..max) | |")
        w("|---|---|---|---|")
        for what, tgt, got, ok in targets:
            w(f"| {what} | {tgt} | {got} | {ok if isinstance(ok, str) else verdict(ok)} |")
        w("")

    # ---------------------------------------------------------------- e2e
    if e2e:
        w("### End to end (real Prosody)")
        w("")
        w("Per mode: median (min..max) over the rounds; ratio = module/plain per round (paired), then median (min..max).")
        w("")
        for res in e2e["results"]:
            s = res["summary"]
            n = len([r for r in res["rounds"] if not r.get("warmup")]) // 2
            w(f"#### {res['size']}: {res['accounts']} accounts × {res['sessions']} sessions + {res['observers']} plain "
              f"occupants, {res['messages']} messages (bursts of {res['burst']}), {res['late_attaches']} late attaches, "
              f"{n} rounds")
            w("")
            w("| metric | module | plain | module/plain |")
            w("|---|---|---|---|")
            for key, v in s.items():
                if not isinstance(v, dict) or "label" not in v:
                    continue
                w(f"| {v['label']} | {fmt_spread(v['module'])} | {fmt_spread(v['plain'])} | {fmt_spread(v['ratio'])} |")
            w("")
            for m, t in s["deliveries"].items():
                w(f"- deliveries, {m}: expected {t['expected']}, received {t['received']}, lost {t['lost']}, "
                  f"duplicated {t['duplicated']}, out of order {t['out_of_order']}")
            ap = s.get("attach_presences", {})
            if ap:
                w(f"- presences delivered while sessions 2..S joined: module {fmt_spread(ap.get('module'), 0)}, "
                  f"plain {fmt_spread(ap.get('plain'), 0)}")
            lp = s.get("late_presences_to_others", {})
            if lp:
                w(f"- presences the other occupants got from the late attaches: module {fmt_spread(lp.get('module'), 0)}, "
                  f"plain {fmt_spread(lp.get('plain'), 0)}")
            if s.get("module_stats"):
                w("- module `stats()` at the memory snapshot: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(s["module_stats"].items())))
            errs = {m: e for m, e in res.get("log_errors", {}).items() if e}
            if errs:
                w(f"- error lines in the Prosody logs: {errs}")
            w("")

    # ---------------------------------------------------------------- bridge
    if bridge:
        w("### Bridge, inside Lua (`bench/lua/bridge_bench.lua`, os.clock)")
        w("")
        w(f"{bridge['lua']}, `{bridge['library']}`{' (quick)' if bridge.get('quick') else ''}; median (min..max) of "
          "the repetitions, µs per operation.")
        w("")
        w("| operation | µs/op |")
        w("|---|---|")
        for name, r in bridge["results"].items():
            w(f"| `{name}` | {r['us']:.2f} ({r['min']:.2f}..{r['max']:.2f}) |")
        w("")

    # ---------------------------------------------------------------- core
    if crit:
        w("### Core, criterion (`cargo bench --no-default-features --bench core`)")
        w("")
        w("| benchmark | median | ± MAD |")
        w("|---|---|---|")
        for name in sorted(crit, key=lambda n: (n.split("/")[0], n)):
            c = crit[name]
            w(f"| `{name}` | {fmt_time(c['median_ns'])} | {fmt_time(c['mad_ns'])} |")
        w("")
    if mem:
        w("Heap the core keeps (counting allocator, live bytes after building the state; 3 joined sessions):")
        w("")
        w("| state | bytes | KiB | allocations |")
        w("|---|---|---|---|")
        for key, fields in mem.items():
            b = int(fields[key])
            extra = ", ".join(f"{k} {v}" for k, v in fields.items() if k not in (key, "allocs"))
            label = key.removesuffix("_bytes") + (f" ({extra})" if extra else "")
            w(f"| {label} | {b} | {b / 1024:.1f} | {fields.get('allocs', '')} |")
        w("")
    w(END)
    generated = "\n".join(L)

    path = Path(args.results)
    if path.exists():
        text = path.read_text()
        if BEGIN in text and END in text:
            pre, rest = text.split(BEGIN, 1)
            post = rest.split(END, 1)[1]
            text = pre + generated + post
        else:
            text = text.rstrip() + "\n\n" + generated + "\n"
    else:
        text = f"# mod_minimix benchmarks — results\n\nReproduce with `{args.command}` (see bench/README.md).\n\n{generated}\n"
    path.write_text(text)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
