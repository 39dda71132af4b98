#!/usr/bin/env python3
"""`make bench`: every service benchmark in turn, then one table of figure, target, measured and
ratio.

  bench-all.py                 run each make target of BENCH_TARGETS (default: bench-bus
                               bench-ingress bench-sync bench-match bench-risk bench-api) in
                               turn, whatever the previous one did; its output goes to the
                               terminal and to <out dir>/bench-logs/<target>.log, its RESULT
                               lines to <out dir>/bench-results.txt; then the table
  bench-all.py --from FILE     the table of recorded results: lines `[<bench>] RESULT <figure>
                               <number>` (a results file, or RESULT lines copied from a
                               benchmark's output) and `# <bench> exit <code>` status lines
  bench-all.py --self-test     the parser, the table and the runner (a stub make: one failing
                               benchmark must not stop the others) on recorded sample output

The out dir is $CARGO_TARGET_DIR (default ~/.cache/billing-target). Targets live in
scripts/bench-targets.tsv. ratio = measured / target: a "higher is better" target is met at
ratio ≥ 1, a "lower is better" one at ratio ≤ 1. Exits 1 if any benchmark failed (non-zero
exit, or no RESULT line at all); a missed target is reported, not a failure.
"""
from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS_FILE = os.path.join(HERE, "bench-targets.tsv")
SAMPLE_FILE = os.path.join(HERE, "testdata", "bench-results-sample.txt")
DEFAULT_BENCHES = "bench-bus bench-ingress bench-sync bench-match bench-risk bench-api"
RESULT_RE = re.compile(r"^(?:(?P<bench>[\w.-]+)\s+)?RESULT\s+(?P<figure>\w+)\s+(?P<value>\S+)\s*$")
STATUS_RE = re.compile(r"^#\s*(?P<bench>[\w.-]+)\s+exit\s+(?P<code>-?\d+)")


@dataclass
class Target:
    bench: str
    figure: str
    target: float | None
    direction: str  # "higher", "lower" or "-"
    source: str


@dataclass
class Run:
    """What the benchmarks reported: figures per bench (in order) and each bench's exit code."""

    results: dict[str, dict[str, str]] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)

    def add(self, bench: str, figure: str, value: str) -> None:
        self.results.setdefault(bench, {})[figure] = value

    def failed(self) -> list[str]:
        return [b for b, code in self.status.items() if code != 0 or not self.results.get(b)]


def load_targets(path: str = TARGETS_FILE) -> list[Target]:
    targets = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) != 5:
                raise SystemExit(f"{path}:{n}: expected 5 tab-separated columns, got {len(cols)}")
            bench, figure, target, direction, source = cols
            if (target == "-") != (direction == "-") or direction not in ("higher", "lower", "-"):
                raise SystemExit(f"{path}:{n}: target and direction must both be set or both be -")
            targets.append(Target(bench, figure, None if target == "-" else float(target), direction, source))
    return targets


def parse(lines, targets: list[Target]) -> Run:
    """Reads results files and raw benchmark output alike. A RESULT line without a bench name
    belongs to the bench of the last status line, else to the first bench listing the figure."""
    owner = {}
    for t in targets:
        owner.setdefault(t.figure, t.bench)
    run, current = Run(), None
    for line in lines:
        line = line.strip()
        if m := STATUS_RE.match(line):
            current = m["bench"]
            run.status[current] = int(m["code"])
        elif m := RESULT_RE.match(line):
            try:
                float(m["value"])
            except ValueError:
                continue  # not a figure (the contract is plain numbers)
            bench = m["bench"] or current or owner.get(m["figure"], "-")
            run.add(bench, m["figure"], m["value"])
    return run


def fmt_number(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}" if x != int(x) else f"{x:.0f}"


def table(run: Run, targets: list[Target]) -> str:
    rows = [("bench", "figure", "target", "measured", "ratio", "verdict", "source")]
    listed = set()
    benches = list(dict.fromkeys([t.bench for t in targets if t.bench in run.results or t.bench in run.status]
                                 + list(run.results) + list(run.status)))
    for bench in benches:
        measured = run.results.get(bench, {})
        code = run.status.get(bench)
        if code not in (None, 0) or (code is not None and not measured):
            why = f"exit {code}" if code else "no RESULT line"
            rows.append((bench, "(benchmark)", "-", "-", "-", f"FAILED ({why})", "-"))
        figures = [t for t in targets if t.bench == bench]
        known = {t.figure for t in figures}
        figures += [Target(bench, f, None, "-", "-") for f in measured if f not in known]
        for t in figures:
            listed.add((bench, t.figure))
            value = measured.get(t.figure)
            target = "-" if t.target is None else ("≥ " if t.direction == "higher" else "≤ ") + fmt_number(t.target)
            if value is None:
                rows.append((bench, t.figure, target, "-", "-", "not measured", t.source))
                continue
            v = float(value)
            if t.target is None:
                ratio, verdict = "-", ""
            else:
                met = v >= t.target if t.direction == "higher" else v <= t.target
                ratio = "-" if t.target == 0 else f"{v / t.target:.2f} {'↑' if t.direction == 'higher' else '↓'}"
                verdict = "met" if met else "missed"
            rows.append((bench, t.figure, target, value, ratio, verdict, t.source))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    rss = [(b, f, v) for b, figs in run.results.items() for f, v in figs.items() if f.endswith("_rss_mb")]
    out.append("")
    out.append("ratio = measured / target: ↑ higher is better (met at ≥ 1), ↓ lower is better (met at ≤ 1)")
    if rss:
        out.append("peak RSS under load (MB): " + ", ".join(f"{f[:-7]} {v} ({b})" for b, f, v in rss))
    return "\n".join(out)


def out_dir() -> str:
    return os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/billing-target")


def run_benches(benches: list[str], make: list[str], results_path: str, logs_dir: str) -> Run:
    os.makedirs(logs_dir, exist_ok=True)
    os.makedirs(os.path.dirname(results_path), exist_ok=True)
    run = Run()
    with open(results_path, "w", encoding="utf-8") as results:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        results.write(f"# make bench {stamp}: {' '.join(benches)}\n")
        for bench in benches:
            print(f"==> {bench}", flush=True)
            started = time.monotonic()
            with open(os.path.join(logs_dir, f"{bench}.log"), "w", encoding="utf-8") as log:
                try:
                    proc = subprocess.Popen(make + [bench], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                            text=True, errors="replace", bufsize=1)
                except OSError as e:
                    print(f"{bench}: cannot start {make}: {e}", flush=True)
                    code = 127
                else:
                    assert proc.stdout is not None
                    for line in proc.stdout:
                        sys.stdout.write(line)
                        log.write(line)
                        if m := RESULT_RE.match(line.strip()):
                            if m["bench"] is None:
                                run.add(bench, m["figure"], m["value"])
                                results.write(f"{bench} RESULT {m['figure']} {m['value']}\n")
                                results.flush()
                    code = proc.wait()
            run.status[bench] = code
            seconds = time.monotonic() - started
            results.write(f"# {bench} exit {code} {seconds:.0f} s\n")
            results.flush()
            print(f"==> {bench}: exit {code} after {seconds:.0f} s, "
                  f"{len(run.results.get(bench, {}))} RESULT lines", flush=True)
    return run


def report(run: Run, targets: list[Target]) -> int:
    print(table(run, targets))
    failed = run.failed()
    if failed:
        print(f"bench: FAILED: {', '.join(failed)}")
        return 1
    return 0


# --- self-test -------------------------------------------------------------------------------

STUB_MAKE = """#!/usr/bin/env bash
case "$1" in
  bench-bus) echo "publishing..."; echo "RESULT bus_confirmed_publish_per_s 25000"; echo "RESULT bus_latency_p99_ms 4.5" ;;
  bench-ingress) echo "RESULT ingress_events_per_s 3000"; echo "panic: broker gone" >&2; exit 2 ;;
  bench-sync) echo "RESULT backfill_1k_s 1.5"; echo "RESULT backfill_rss_mb 33" ;;
  bench-match) echo "nothing measured" ;;
  *) exit 1 ;;
esac
"""


def self_test() -> int:
    results: list[str | None] = []

    def check(ok: bool, what: str) -> None:
        results.append(None if ok else what)

    targets = load_targets()
    benches = {t.bench for t in targets}
    for b in DEFAULT_BENCHES.split():
        check(b in benches, f"{b} has no targets in {TARGETS_FILE}")

    # Recorded output (figures from docs/benchmarks.md).
    with open(SAMPLE_FILE, encoding="utf-8") as f:
        run = parse(f, targets)
    text = table(run, targets)
    rows = {tuple(line.split()[:2]): line for line in text.splitlines() if line.startswith("bench-")}

    def row(bench: str, figure: str) -> str:
        return rows.get((bench, figure), "")

    check("0.67 ↑" in row("bench-bus", "bus_confirmed_publish_per_s")
          and "missed" in row("bench-bus", "bus_confirmed_publish_per_s"), "throughput ratio: " + row("bench-bus", "bus_confirmed_publish_per_s"))
    check("6.40 ↓" in row("bench-bus", "bus_latency_p99_ms") and "missed" in row("bench-bus", "bus_latency_p99_ms"),
          "latency ratio: " + row("bench-bus", "bus_latency_p99_ms"))
    check("0.56 ↓" in row("bench-ingress", "ingress_ack_p99_ms") and row("bench-ingress", "ingress_ack_p99_ms").split()[-3] == "met",
          "met latency: " + row("bench-ingress", "ingress_ack_p99_ms"))
    free = row("bench-match", "match_free_mail_links").split()
    check(free[2:7] == ["≤", "0", "0", "-", "met"], f"zero target: {free}")
    check("1.01 ↑" in row("bench-match", "match_precision"), "precision: " + row("bench-match", "match_precision"))
    check(bool(row("bench-ingress", "ingress_rss_mb")) and bool(row("bench-risk", "ingress_rss_mb")),
          "one figure in two benches must give two rows")
    check("0.20 ↓" in row("bench-risk", "ingress_rss_mb"), "bench-risk's ingress RSS: " + row("bench-risk", "ingress_rss_mb"))
    check("not measured" in row("bench-sync", "live_apply_p99_ms"), "missing figure: " + row("bench-sync", "live_apply_p99_ms"))
    risk_p50 = row("bench-risk", "e2e_signal_p50_ms").split()
    check(risk_p50[2:5] == ["-", "205", "-"], f"figure without a target: {risk_p50}")
    check(bool(row("bench-api", "api_achieved_rps")), "api_achieved_rps listed")
    check("peak RSS under load (MB): ingress 26" in text and "sync_worker 50 (bench-risk)" in text,
          "RSS summary: " + text.splitlines()[-1])
    check(not run.failed(), f"sample has no failure: {run.failed()}")
    raw = parse(["RESULT api_p99_ms 9.60", "RESULT bogus_figure 3", "RESULT api_rss_mb 24 MB"], targets)
    check(raw.results == {"bench-api": {"api_p99_ms": "9.60"}, "-": {"bogus_figure": "3"}},
          f"raw RESULT lines: {raw.results}")

    # The runner: a failing benchmark and one without figures do not stop the others.
    with tempfile.TemporaryDirectory() as d:
        stub = os.path.join(d, "make")
        with open(stub, "w") as f:
            f.write(STUB_MAKE)
        os.chmod(stub, 0o755)
        devnull = open(os.devnull, "w")
        saved, sys.stdout = sys.stdout, devnull
        try:
            run = run_benches(["bench-bus", "bench-ingress", "bench-sync", "bench-match"], [stub],
                              os.path.join(d, "out", "bench-results.txt"), os.path.join(d, "out", "logs"))
            code = report(run, targets)
        finally:
            sys.stdout = saved
            devnull.close()
        check(code == 1, "a failed benchmark must fail the run")
        check(run.failed() == ["bench-ingress", "bench-match"], f"failed: {run.failed()}")
        check(run.results.get("bench-sync") == {"backfill_1k_s": "1.5", "backfill_rss_mb": "33"},
              f"the bench after the failure ran: {run.results}")
        with open(os.path.join(d, "out", "bench-results.txt")) as f:
            recorded = parse(f, targets)
        check(recorded.results == run.results and recorded.status == run.status, "results file round-trips")
        with open(os.path.join(d, "out", "logs", "bench-ingress.log")) as f:
            check("panic: broker gone" in f.read(), "stderr kept in the bench's log")
        text = table(run, targets)
        check("FAILED (exit 2)" in text and "FAILED (no RESULT line)" in text, "failures in the table")
    failed = [r for r in results if r is not None]
    for what in failed:
        print(f"bench-all self-test: {what}")
    print(f"bench-all self-test: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    targets = load_targets()
    if argv == ["--self-test"]:
        return self_test()
    if len(argv) == 2 and argv[0] == "--from":
        with open(argv[1], encoding="utf-8") as f:
            return report(parse(f, targets), targets)
    if argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    benches = os.environ.get("BENCH_TARGETS", DEFAULT_BENCHES).split()
    make = os.environ.get("MAKE", "make").split() + ["--no-print-directory"]
    out = out_dir()
    run = run_benches(benches, make, os.path.join(out, "bench-results.txt"), os.path.join(out, "bench-logs"))
    print(f"\nresults: {os.path.join(out, 'bench-results.txt')}, logs: {os.path.join(out, 'bench-logs')}/")
    return report(run, targets)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
