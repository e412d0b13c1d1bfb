"""Many channels: K ingest keys, each with its own publisher and D
destinations (a small hosting service), through antenne and through
nginx-rtmp (K applications, D `push` lines each). Run by
`relay_bench.py --channels K` (`--channel-dests D`, default 3).

Publishers are K `ffmpeg -re -stream_loop -1 -c copy` processes playing the
bench clip (their CPU is reported apart, as "publishers"); every
destination goes to the antenne-bench sink under its own stream name. No
hop latency here (the ffmpeg publishers do not record send instants):
CPU, RSS, PSS and wake-ups of the relay over the window, and how many
streams the sink receives video on at the end.

`rb` is the relay_bench module as it runs (its process registry, Meter,
Nginx, AntenneRelay): passed in rather than imported, so that every child
is in the one registry the script kills on exit.
"""
import os
import time

# Publishers started together (see run_case).
BATCH = 5


def run_case(rb, design, k, d, ctx):
    tag = f"m{'a' if design == 'antenne' else 'p'}{k}_"
    case_dir = os.path.join(ctx.tmp, f"channels-{design}-{k}")
    os.makedirs(case_dir, exist_ok=True)
    peers = ctx.peers
    sink = f"rtmp://127.0.0.1:{peers.port}/live"
    res = {"design": design, "k": k, "d": d, "notes": []}
    started = []
    t_case = time.monotonic()
    try:
        keys = [f"{tag}key{c}" for c in range(1, k + 1)]
        if design == "antenne":
            relay = rb.AntenneRelay(ctx.antenne_bin, case_dir, threads=ctx.antenne_threads,
                                    ingest_keys=keys)
            relay.start()
            started.append(relay.proc)
            for c, key in enumerate(keys, 1):
                for j in range(1, d + 1):
                    code, body = rb.http_json(
                        "POST", f"{relay.api}/destinations",
                        {"name": f"c{c}d{j}", "url": sink, "key": f"{tag}c{c}d{j}",
                         "ingest": key})
                    if code != 201:
                        raise rb.CaseError(f"POST /destinations answered {code}: {body}")
            urls = [f"rtmp://127.0.0.1:{relay.port}/live/{key}" for key in keys]
            pids_fn = relay.pids
        else:
            apps = {f"c{c}": [f"{sink}/{tag}c{c}d{j}" for j in range(1, d + 1)]
                    for c in range(1, k + 1)}
            relay = rb.Nginx(f"nginx-channels-{k}", case_dir, apps=apps)
            relay.start()
            started.append(relay.proc)
            urls = [f"rtmp://127.0.0.1:{relay.port}/c{c}/s" for c in range(1, k + 1)]
            pids_fn = relay.pids
        def receiving():
            return peers.cmd(cmd="status", prefix=tag).get("receiving", 0)

        # Publishers start BATCH at a time, the next batch once the sink
        # receives the last one's streams (or after 10 s): all at once from
        # one address, antenne refuses connections beyond its limit of
        # unauthenticated connections per address (8), as it would a flood.
        pubs = []
        for c, url in enumerate(urls, 1):
            p = rb.PROCS.spawn(
                f"publisher-{c}",
                ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning", "-re",
                 "-stream_loop", "-1", "-i", ctx.clip, "-c", "copy", "-f", "flv", url],
                os.path.join(case_dir, f"publisher-{c}.log"))
            pubs.append(p)
            started.append(p)
            if c % BATCH == 0:
                rb.wait_until(10, lambda: receiving() >= c * d, interval=0.2)
        want = k * d

        ok = rb.wait_until(20 + 0.1 * want, lambda: receiving() >= want, interval=0.5)
        if not ok:
            res["notes"].append(f"only {receiving()}/{want} streams receiving before the window")
        time.sleep(ctx.settle)
        meter = rb.Meter({"relay": pids_fn(), "publishers": [p.pid for p in pubs]})
        meter.start()
        time.sleep(ctx.seconds)
        m = meter.stop()
        res["receiving"] = receiving()
        res["load"] = rb.loadavg()
        res.update({x: m["relay"][x] for x in ("cpu", "rss", "pss", "nprocs", "wakeups", "cpu_ns")})
        res["host_busy"] = m["host_busy"]
        res["pub_cpu"] = m["publishers"]["cpu"]
        dead = [p for p in pubs if p.poll() is not None]
        if dead:
            res["notes"].append(f"{len(dead)} publishers exited: {rb.tail(dead[0].bench_log, 2)}")
    except (rb.CaseError, RuntimeError) as e:
        res["error"] = str(e)
        rb.log(f"channels {design} K={k} FAILED: {e}")
    finally:
        rb.PROCS.kill(started)
    rb.log(f"channels {design:10s} K={k} x {d}: cpu {res.get('cpu', float('nan')):.1f} %  "
           f"rss {res.get('rss', float('nan')):.1f} MiB  pss {res.get('pss', float('nan')):.1f} MiB  "
           f"wake-ups {res.get('wakeups', float('nan')):.0f}/s  "
           f"sink {res.get('receiving', 0)}/{k * d}  load {res.get('load', '?')}  "
           f"({time.monotonic() - t_case:.0f} s)")
    return res


def print_table(results, k, d, seconds, tick_pct):
    out = [f"### Many channels: {k} ingest keys × {d} destinations ({k * d} outputs)", "",
           "| design | CPU % (one core) | CPU % (schedstat) | RSS MiB | PSS MiB | wake-ups/s | CPU vs nginx "
           "| PSS vs nginx | streams at sink | publishers CPU % | host busy % | load | notes |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    ref = results.get("nginx-push") or {}
    for design in ("antenne", "nginx-push"):
        r = results.get(design)
        if r is None:
            continue
        if "cpu" not in r:
            err = r.get("error", "not run").splitlines()[0][:120].replace("|", "/")
            out.append(f"| {design} | failed: {err} | | | | | | | | | | | |")
            continue

        def vs(key):
            b = ref.get(key)
            return f"{r[key] / b:.2f}×" if b else "—"
        notes = "; ".join(r["notes"]).replace("|", "/").replace("\n", " ")
        out.append(f"| {design} | {r['cpu']:.1f} | {r['cpu_ns']:.2f} | {r['rss']:.1f} | {r['pss']:.1f} "
                   f"| {r['wakeups']:.0f} | {vs('cpu')} | {vs('pss')} | {r['receiving']}/{k * d} "
                   f"| {r['pub_cpu']:.0f} | {r['host_busy']:.0f} | {r['load']} | {notes[:200]} |")
    out.append("")
    out.append(f"Window {seconds:g} s; CPU resolution {tick_pct:.2f} % of one core. Publishers: "
               f"{k} ffmpeg `-re -stream_loop -1 -c copy` (not counted in the relay). "
               f"nginx: one worker, {k} applications with {d} `push` each. Wake-ups = "
               f"voluntary context switches per second over the relay's threads.")
    print("\n".join(out), flush=True)


def run(rb, ctx, k, d):
    results = {}
    for design in ctx.channel_designs:
        results[design] = run_case(rb, design, k, d, ctx)
    print_table(results, k, d, ctx.seconds, 100.0 / rb.CLK_TCK / ctx.seconds)
    return results
