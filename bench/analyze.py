#!/usr/bin/env python3
"""Helpers for bench/run.sh (stdlib only).

  analyze.py delta BEFORE AFTER ROUTE   -> one JSON object: what the server did between two
                                           /metrics snapshots, as seen by its own counters
  analyze.py record WRK_OUT DELTA NAME BACKEND RSS_KB HWM_KB [KEY=VALUE ...]
                                        -> one JSON line for results.jsonl
  analyze.py summary RESULTS.jsonl      -> the Markdown tables printed at the end
  analyze.py line < RECORD              -> one progress line for a record

The server's counters are the source of truth for database queries and for the status codes
actually answered (wrk only knows "non-2xx"); wrk is the source of truth for client-side
throughput and latency.
"""
import json
import re
import sys
from collections import defaultdict
from statistics import median

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(path):
    """{(name, frozenset(labels)): value} for every sample in a Prometheus text file."""
    out = {}
    with open(path) as f:
        for line in f:
            m = SAMPLE.match(line.strip())
            if not m or line.startswith("#"):
                continue
            name, labels, value = m.groups()
            out[(name, frozenset(LABEL.findall(labels or "")))] = float(value)
    return out


def delta(before_path, after_path, route):
    before, after = parse_metrics(before_path), parse_metrics(after_path)
    queries, by_op, statuses = 0.0, defaultdict(float), defaultdict(float)
    dur_sum = dur_count = 0.0
    cache_entries = {}
    for key, value in after.items():
        name, labels = key
        d = value - before.get(key, 0.0)
        labels = dict(labels)
        if name == "taskgate_auth_cache_entries":
            # A gauge: its value after the run (e.g. how full the negative cache is).
            cache_entries[labels.get("kind", "?")] = int(value)
            continue
        if name == "taskgate_db_queries_total":
            # Every statement the server sent, whatever the operation: background work
            # (e.g. the scheduler's advance_due_runs) is included on purpose and shown per
            # operation so it can be told apart from the auth path.
            queries += d
            if d:
                by_op[labels.get("operation", "?")] += d
        elif labels.get("route") != route:
            continue
        elif name == "taskgate_http_requests_total":
            if d:
                statuses[labels.get("status", "?")] += d
        elif name == "taskgate_http_request_duration_seconds_sum":
            dur_sum += d
        elif name == "taskgate_http_request_duration_seconds_count":
            dur_count += d
    return {
        "queries": int(round(queries)),
        "queries_by_op": {k: int(round(v)) for k, v in sorted(by_op.items(), key=lambda kv: -kv[1])},
        "statuses": {k: int(round(v)) for k, v in sorted(statuses.items())},
        # Requests the server answered on the route; can exceed wrk's count by the few that
        # were in flight when wrk stopped, which still reached the database.
        "server_requests": int(round(sum(statuses.values()))),
        "cache_entries_after": cache_entries,
        # Mean time inside the server (axum layer, so after the socket read and before the
        # write): less disturbed than wrk's latency by the load generator sharing the CPUs.
        "server_mean_us": round(dur_sum / dur_count * 1e6, 2) if dur_count else None,
    }


def record(wrk_out, delta_path, name, backend, rss_kb, hwm_kb, extra):
    wrk = None
    with open(wrk_out) as f:
        for line in f:
            if line.startswith("WRK_JSON "):
                wrk = json.loads(line[len("WRK_JSON "):])
    if wrk is None:
        sys.exit(f"no WRK_JSON line in {wrk_out}: did wrk fail?")
    with open(delta_path) as f:
        d = json.load(f)
    rec = {
        "backend": backend,
        "name": name,
        "rps": round(wrk["requests"] / (wrk["duration_us"] / 1e6), 1),
        **wrk,
        **d,
        "rss_kb": int(rss_kb),
        "hwm_kb": int(hwm_kb),
    }
    for kv in extra:
        k, _, v = kv.partition("=")
        rec[k] = int(v) if v.lstrip("-").isdigit() else v
    return rec


# ---------------------------------------------------------------- summary

THROUGHPUT = [
    ("baseline", "`/healthz` (baseline, no auth)"),
    ("current_key", "secret key K2 (current)"),
    ("grace_key", "secret key K1 (grace window)"),
    ("current_jwt", "JWT signed with K2 (current)"),
    ("grace_jwt", "JWT signed with K1 (grace)"),
]


def ms(us):
    return f"{us / 1000:.2f}"


def by_round(recs):
    return {r.get("round"): r for r in recs}


def round_ratios(runs, key, against):
    """{round: req/s of `key` / req/s of `against`} over the rounds that measured both."""
    a, b = by_round(runs.get(key, [])), by_round(runs.get(against, []))
    return {n: a[n]["rps"] / b[n]["rps"] for n in sorted(a) if n in b and b[n]["rps"]}


def summary(path):
    recs = defaultdict(lambda: defaultdict(list))
    meta = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if r.get("name") == "meta":
                meta[r["backend"]] = r
            else:
                recs[r["backend"]][r["name"]].append(r)
    lines = []
    p = lines.append
    for backend, runs in recs.items():
        m = meta.get(backend, {})
        problems = []  # anything that makes a figure untrustworthy
        rounds = max((len(runs.get(k, [])) for k, _ in THROUGHPUT), default=0)
        p(f"### {backend}")
        p("")
        p(f"Medians over {rounds} interleaved rounds; each ratio compares a path with the baseline "
          "of its own round.")
        p("")
        p("| path | req/s | ratio to baseline | ratio per round | p50 ms | p99 ms | server µs/req | non-2xx |")
        p("|---|---:|---:|---|---:|---:|---:|---:|")
        for key, label in THROUGHPUT:
            rs = runs.get(key)
            if not rs:
                continue
            ratios = round_ratios(runs, key, "baseline")
            ratio = f"{median(ratios.values()):.2f}" if ratios else "–"
            per_round = " / ".join(f"{v:.2f}" for v in ratios.values()) or "–"
            for r in rs:
                if r["non_2xx"] or r["socket_errors"]:
                    problems.append(f"{key} round {r.get('round')}: {r['non_2xx']} non-2xx answers, "
                                    f"{r['socket_errors']} socket errors")
            server = [r["server_mean_us"] for r in rs if r["server_mean_us"] is not None]
            server = round(median(server), 2) if server else "–"
            p(f"| {label} | {median(r['rps'] for r in rs):,.0f} | {ratio} | {per_round} "
              f"| {ms(median(r['p50_us'] for r in rs))} | {ms(median(r['p99_us'] for r in rs))} "
              f"| {server} | {sum(r['non_2xx'] for r in rs)} |")
        base = [r["rps"] for r in runs.get("baseline", [])]
        if len(base) > 1:
            p("")
            p(f"The baseline itself ranged over {min(base):,.0f}–{max(base):,.0f} req/s across the rounds "
              f"({max(base) / min(base) - 1:.0%} apart): the machine's drift while this ran.")
        p("")
        # Targets, computed from this run only: the median of the per-round ratios.
        checks = []
        for key, against, label, target in (
                ("current_key", "baseline", "current key ≥ 0.90 × baseline", 0.90),
                ("grace_key", "baseline", "grace key ≥ 0.90 × baseline", 0.90),
                ("grace_jwt", "current_jwt", "grace JWT ≥ 0.80 × current JWT", 0.80)):
            ratios = round_ratios(runs, key, against)
            if ratios:
                ratio = median(ratios.values())
                checks.append(f"{label}: {ratio:.2f} → {'met' if ratio >= target else 'MISSED'}")
        p("| flood | requests answered | req/s | p99 ms | server µs/req | DB queries | queries / 1,000 req "
          "| negative-cache entries after | queries by operation |")
        p("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for key, label in (("garbage_one_key", "one random unknown key, repeated"),
                           ("garbage_distinct_keys", "a fresh random key per request")):
            if not runs.get(key):
                continue
            r = runs[key][-1]
            # Denominator: what the server answered (all 401s, checked below), because the
            # queries counted include those of requests still in flight when wrk stopped.
            n = r["server_requests"]
            per_k = r["queries"] / n * 1000 if n else float("nan")
            ops = ", ".join(f"{k} {v}" for k, v in r["queries_by_op"].items()) or "none"
            neg = r["cache_entries_after"].get("unknown_key", "–")
            neg = f"{neg:,}" if isinstance(neg, int) else neg
            p(f"| {label} | {n:,} | {r['rps']:,.0f} | {ms(r['p99_us'])} | {r['server_mean_us']} "
              f"| {r['queries']:,} | {per_k:.2f} | {neg} | {ops} |")
            if set(r["statuses"]) != {"401"}:
                problems.append(f"{key}: unexpected statuses {r['statuses']}")
            if key == "garbage_one_key":
                checks.append(f"one garbage key < 1 query / 1,000 requests: {per_k:.2f} → "
                              f"{'met' if per_k < 1 else 'MISSED'}")
        p("")
        every = [r for rs in runs.values() for r in rs]
        if "idle_rss_kb" in m and every:
            heaviest = max(every, key=lambda r: r["rss_kb"])
            throughput = [r for k, _ in THROUGHPUT for r in runs.get(k, [])]
            p("| memory | MiB |")
            p("|---|---:|")
            p(f"| RSS idle after bootstrap | {m['idle_rss_kb'] / 1024:.1f} |")
            if throughput:
                p(f"| RSS at the end of the throughput rounds | {max(r['rss_kb'] for r in throughput) / 1024:.1f} |")
            for key, label in (("garbage_one_key", "RSS at the end of the one-key flood"),
                               ("garbage_distinct_keys",
                                "RSS at the end of the distinct-key flood (heaviest: fills the negative cache)")):
                if runs.get(key):
                    p(f"| {label} | {runs[key][-1]['rss_kb'] / 1024:.1f} |")
            p(f"| highest RSS at the end of any run ({heaviest['name']}) | {heaviest['rss_kb'] / 1024:.1f} |")
            p(f"| peak RSS over the whole run (VmHWM) | {max(r['hwm_kb'] for r in every) / 1024:.1f} |")
            p("")
        if "background_queries_per_s" in m:
            p(f"Background queries while idle: {m['background_queries_per_s']:.2f}/s "
              f"({m.get('background_ops', '')}).")
            p("")
        p("Targets: " + "; ".join(checks) + ".")
        if problems:
            p("")
            p("**Problems (figures above are suspect):** " + "; ".join(problems) + ".")
        p("")
    print("\n".join(lines))


def progress_line(rec):
    name = rec["name"] + (f" #{rec['round']}" if "round" in rec else "")
    return (f"[bench]   {name:<22} {rec['rps']:>10,.0f} req/s  p50 {ms(rec['p50_us'])} ms  "
            f"p99 {ms(rec['p99_us'])} ms  queries {rec['queries']}  non-2xx {rec['non_2xx']}  "
            f"RSS {rec['rss_kb'] / 1024:.1f} MiB")


def main(argv):
    cmd = argv[1]
    if cmd == "line":
        print(progress_line(json.loads(sys.stdin.readline())))
        return
    if cmd == "delta":
        print(json.dumps(delta(argv[2], argv[3], argv[4])))
    elif cmd == "record":
        print(json.dumps(record(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7], argv[8:])))
    elif cmd == "summary":
        summary(argv[2])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
