#!/usr/bin/env python3
"""Renditions benchmark: what does one vertical 720x1280 rendition shared by
K destinations cost, against one ffmpeg per destination each transcoding?

  antenne          antenne (target/release/antenne) with one rendition
                   (720x1280, crop, 3 Mbit/s, 30 fps, libx264 veryfast) and K
                   destinations relaying it: one ffmpeg child whatever K
  ffmpeg-per-dest  nginx-rtmp (no push) + K ffmpeg processes, each reading the
                   ingest from nginx and transcoding it with the very same
                   arguments as antenne's encoder (copied from its command
                   line) to one destination

Both fan the same 1280x720 30 fps stream (antenne-bench's publisher, the clip
relay_bench.py uses) out to antenne-bench's sink. CPU is utime+stime from
/proc/<pid>/stat over a fixed window, summed over the relay and every child
ffmpeg; memory is RSS and PSS summed (sampled each second, averaged). Then
the latency a rendition adds (the in-process measurement of
`tests/renditions/measure.rs`, which pairs input and output frames by timestamp).
A benchmark: it prints figures, it never fails on a timing.

    python3 bench/renditions_bench.py [--k 1,5,20] [--seconds 20] [--no-build]
        [--no-latency] [--peers-max-k 20] [--designs antenne,ffmpeg-per-dest]

Reuses relay_bench.py's helpers (processes, /proc meter, nginx, peers).
Progress goes to stderr; the tables go to stdout.
"""

import argparse
import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import relay_bench as rb  # noqa: E402

SPEC = {"width": 720, "height": 1280, "video_kbps": 3000, "max_fps": 30,
        "fit": {"mode": "crop", "x": 0.5},
        "encoder": {"kind": "libx264", "preset": "veryfast"}}
log = rb.log


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode() for a in f.read().split(b"\0") if a]
    except OSError:
        return None


def peer_args(encoder_args, src_url, dst_url):
    """antenne's ffmpeg arguments, reading `src_url` and writing `dst_url`
    instead of its pipes (the progress report dropped)."""
    args, i = [], 1
    while i < len(encoder_args):
        a = encoder_args[i]
        if a == "-progress":
            i += 2
            continue
        if a == "-f" and encoder_args[i + 1:i + 4] == ["flv", "-i", "pipe:0"]:
            args += ["-i", src_url]
            i += 4
            continue
        args.append(dst_url if a == "pipe:1" else a)
        i += 1
    return ["ffmpeg", "-nostdin"] + args


def measure(ctx, groups, prefix):
    """CPU/memory of `groups` over the window, and what the sink got."""
    time.sleep(ctx.settle)
    meter = rb.Meter(groups)
    ctx.peers.cmd(cmd="window_start", prefix=prefix)
    meter.start()
    time.sleep(ctx.seconds)
    m = meter.stop()
    win = ctx.peers.cmd(cmd="window_end", prefix=prefix, drain_ms=1000, timeout=60)
    return m, win


def wait_receiving(ctx, prefix, k, res):
    def receiving():
        st = ctx.peers.cmd(cmd="status", prefix=prefix)
        return st.get("receiving", 0) >= k, st
    t = time.monotonic()
    ok = rb.wait_until(30 + 2 * k, lambda: receiving()[0], interval=0.5)
    if not ok:
        res["notes"].append(f"only {receiving()[1].get('receiving', 0)}/{k} receiving "
                            f"after {time.monotonic() - t:.0f} s")


def total(m, names):
    out = {"cpu": 0.0, "rss": 0.0, "pss": 0.0, "nprocs": 0}
    for g in names:
        for key in out:
            out[key] += m[g][key]
    return out


def run_antenne(k, ctx):
    prefix = f"a{k}_"
    case_dir = os.path.join(ctx.tmp, f"antenne-{k}")
    os.makedirs(case_dir, exist_ok=True)
    res = {"design": "antenne", "k": k, "notes": []}
    relay = rb.AntenneRelay(ctx.antenne_bin, case_dir)
    started = []
    try:
        relay.start()
        started.append(relay.proc)
        r = ctx.peers.cmd(cmd="publish", url=f"rtmp://127.0.0.1:{relay.port}/live/bench")
        if not r.get("ok"):
            raise rb.CaseError(f"publisher: {r.get('error')}")
        if not rb.wait_until(10, relay.ingest_live):
            raise rb.CaseError(f"ingest never went live:\n{rb.tail(relay.log)}")
        code, rend = rb.http_json("POST", f"{relay.api}/renditions",
                                  {"name": "Vertical", "spec": SPEC})
        if code != 201:
            raise rb.CaseError(f"POST /renditions answered {code}: {rend}")
        rid = rend["id"]
        for i in range(1, k + 1):
            code, body = rb.http_json("POST", f"{relay.api}/destinations", {
                "name": f"d{i}", "url": f"rtmp://127.0.0.1:{ctx.peers.port}/live",
                "key": f"{prefix}s{i}", "source": {"rendition": rid}})
            if code != 201:
                raise rb.CaseError(f"POST /destinations answered {code}: {body}")
        wait_receiving(ctx, prefix + "s", k, res)
        _, view = rb.http_json("GET", f"{relay.api}/renditions/{rid}")
        pid = (view or {}).get("pid")
        if not pid:
            raise rb.CaseError(f"the rendition has no encoder: {view}\n{rb.tail(relay.log)}")
        if ctx.encoder_args is None:
            ctx.encoder_args = cmdline(pid)
        ffmpegs = [p for p in rb.descendants(relay.proc.pid) if p != relay.proc.pid]
        res["encoders"] = len(ffmpegs)
        m, win = measure(ctx, {"antenne": [relay.proc.pid], "ffmpeg": ffmpegs}, prefix + "s")
        res.update(total(m, ["antenne", "ffmpeg"]))
        res["encoder_cpu"] = m["ffmpeg"]["cpu"]
        res["host_busy"] = m["host_busy"]
        res["win"] = win
        _, view = rb.http_json("GET", f"{relay.api}/renditions/{rid}")
        res["status"] = (view or {}).get("status")
        if m["ffmpeg"]["vanished"] or m["antenne"]["vanished"]:
            res["notes"].append("a process exited during the window")
    except (rb.CaseError, RuntimeError, KeyError, TypeError) as e:
        res["error"] = str(e)
        log(f"antenne K={k} FAILED: {e}")
    finally:
        if ctx.peers.alive():
            try:
                ctx.peers.cmd(cmd="unpublish")
            except RuntimeError:
                pass
        rb.PROCS.kill(started)
    report(res)
    return res


def run_peers(k, ctx):
    prefix = f"f{k}_"
    case_dir = os.path.join(ctx.tmp, f"ffmpeg-{k}")
    os.makedirs(case_dir, exist_ok=True)
    res = {"design": "ffmpeg-per-dest", "k": k, "notes": []}
    started = []
    try:
        nginx = rb.Nginx(f"nginx-{k}", case_dir).start()
        started.append(nginx.proc)
        r = ctx.peers.cmd(cmd="publish", url=nginx.url("bench"))
        if not r.get("ok"):
            raise rb.CaseError(f"publisher: {r.get('error')}")
        if not rb.wait_until(10, lambda: nginx.publishing("bench")):
            raise rb.CaseError(f"ingest never went live at nginx:\n{rb.tail(nginx.error_log)}")
        ffmpegs = []
        for i in range(1, k + 1):
            args = peer_args(ctx.encoder_args, nginx.url("bench"),
                             f"rtmp://127.0.0.1:{ctx.peers.port}/live/{prefix}s{i}")
            p = rb.PROCS.spawn(f"ffmpeg-{i}", args, os.path.join(case_dir, f"ffmpeg-{i}.log"))
            ffmpegs.append(p)
            started.append(p)
        wait_receiving(ctx, prefix + "s", k, res)
        m, win = measure(ctx, {"nginx": nginx.pids(), "ffmpeg": [p.pid for p in ffmpegs]},
                         prefix + "s")
        res.update(total(m, ["nginx", "ffmpeg"]))
        res["host_busy"] = m["host_busy"]
        res["win"] = win
        dead = [p for p in ffmpegs if p.poll() is not None]
        if dead:
            res["notes"].append(f"{len(dead)} ffmpeg exited: {rb.tail(dead[0].bench_log, 3)}")
    except (rb.CaseError, RuntimeError) as e:
        res["error"] = str(e)
        log(f"ffmpeg-per-dest K={k} FAILED: {e}")
    finally:
        if ctx.peers.alive():
            try:
                ctx.peers.cmd(cmd="unpublish")
            except RuntimeError:
                pass
        rb.PROCS.kill(started)
    report(res)
    return res


def rx(res):
    """Slowest destination's received bitrate in the window (Mbit/s): the
    rendition's 3 Mbit/s + audio when its encoder keeps up with real time,
    less when it does not (transcoded frames cannot be matched by content,
    so frames are not counted)."""
    return (res.get("win") or {}).get("rx_mbps_min")


def report(res):
    log(f"{res['design']:15s} K={res['k']:2d}: cpu {res.get('cpu', float('nan')):6.1f} %  "
        f"rss {res.get('rss', float('nan')):7.1f} MiB  pss {res.get('pss', float('nan')):7.1f} MiB  "
        f"rx min {rb.fmt(rx(res), '.2f')} Mbit/s  host {res.get('host_busy', float('nan')):.0f} %  "
        f"load {rb.loadavg()}  {'; '.join(res['notes'])}")


def print_table(results, ks, seconds):
    print(f"\nOne 720x1280 rendition (libx264 veryfast, 3 Mbit/s, 30 fps) shared by K "
          f"destinations vs one ffmpeg transcode per destination; window {seconds:g} s.\n")
    print("| K | antenne CPU % | antenne RSS / PSS MiB | its ffmpegs | ffmpeg-per-dest CPU % "
          "| ffmpeg-per-dest RSS / PSS MiB | CPU ratio | PSS ratio | rx Mbit/s min antenne / peers |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    a1 = results.get(("antenne", ks[0]), {})
    for k in ks:
        a = results.get(("antenne", k), {})
        f = results.get(("ffmpeg-per-dest", k), {})
        print(f"| {k} | {rb.fmt(a.get('cpu'))} | {rb.fmt(a.get('rss'))} / {rb.fmt(a.get('pss'))} "
              f"| {a.get('encoders', '—')} | {rb.fmt(f.get('cpu'))} "
              f"| {rb.fmt(f.get('rss'))} / {rb.fmt(f.get('pss'))} "
              f"| {rb.fmt(rb.ratio(f.get('cpu'), a.get('cpu')), '.1f')}× "
              f"| {rb.fmt(rb.ratio(f.get('pss'), a.get('pss')), '.1f')}× "
              f"| {rb.fmt(rx(a), '.2f')} / {rb.fmt(rx(f), '.2f')} |")
    for k in ks[1:]:
        a = results.get(("antenne", k), {})
        if a.get("cpu") is not None and a1.get("cpu"):
            print(f"\nantenne at K={k}: {100.0 * (a['cpu'] / a1['cpu'] - 1):+.0f} % CPU "
                  f"against K={ks[0]}.", end="")
    print()
    f1 = results.get(("ffmpeg-per-dest", 1), {})
    kmax = ks[-1]
    amax = results.get(("antenne", kmax), {})
    if f1.get("cpu") and amax.get("cpu"):
        print(f"One transcode per destination at K={kmax}, from K=1's cost × {kmax} "
              f"(what it needs when the machine has the cores): {f1['cpu'] * kmax:.0f} % "
              f"of a core, {f1['cpu'] * kmax / amax['cpu']:.1f}× antenne's.")
    for k in ks:
        a = results.get(("antenne", k), {})
        if a.get("encoder_cpu") is not None:
            st = a.get("status") or {}
            print(f"K={k}: the rendition's ffmpeg alone {a['encoder_cpu']:.1f} % of a core "
                  f"(state {st.get('state')}, speed {st.get('speed')}, fps {st.get('fps')}).")


def latency(repo):
    """Runs the in-process latency measurement and returns its line."""
    log("cargo test -p antenne --test renditions -- --ignored --nocapture "
        "measure_latency_and_cpu_of_a_720x1280_rendition ...")
    r = subprocess.run(
        ["cargo", "test", "-q", "-p", "antenne", "--test", "renditions", "--",
         "--ignored", "--nocapture",
         "measure::measure_latency_and_cpu_of_a_720x1280_rendition"],
        cwd=repo, capture_output=True, text=True)
    lines = [ln for ln in r.stdout.splitlines() if "rendition:" in ln]
    if r.returncode != 0 or not lines:
        return f"latency measurement failed ({r.returncode}):\n{(r.stdout + r.stderr)[-2000:]}"
    return lines[-1]


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", default="1,5,20", help="destinations per run (default 1,5,20)")
    ap.add_argument("--peers-max-k", type=int, default=20,
                    help="largest K for ffmpeg-per-dest (default 20)")
    ap.add_argument("--seconds", type=float, default=20.0, help="window per run (default 20)")
    ap.add_argument("--settle", type=float, default=5.0,
                    help="seconds after every destination receives (default 5)")
    ap.add_argument("--clip-seconds", type=int, default=30)
    ap.add_argument("--kbps", type=int, default=5800)
    ap.add_argument("--no-build", action="store_true",
                    help="use the existing release binaries")
    ap.add_argument("--designs", default="antenne,ffmpeg-per-dest",
                    help="comma-separated subset of antenne,ffmpeg-per-dest (the "
                         "peers' design copies antenne's encoder command line, so it "
                         "needs antenne)")
    ap.add_argument("--no-latency", action="store_true",
                    help="skip the latency measurement (a cargo test)")
    a = ap.parse_args()
    ks = rb.parse_ns(a.k, "--k", ap)
    for prog in ("ffmpeg", "nginx", "openssl"):
        if not shutil.which(prog):
            sys.exit(f"{prog} not found in PATH")
    signal.signal(signal.SIGTERM, rb._on_signal)
    atexit.register(rb.PROCS.kill_all)
    ctx = Ctx()
    ctx.seconds, ctx.settle, ctx.encoder_args = a.seconds, a.settle, None
    ctx.tmp = tempfile.mkdtemp(prefix="antenne-rbench-")
    load_start = rb.uptime()
    log(f"temp dir {ctx.tmp}; {load_start}")
    ok = False
    try:
        target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(rb.REPO, "target")
        ctx.antenne_bin = os.path.join(target, "release", "antenne")
        bench_bin = os.path.join(target, "release", "antenne-bench")
        if not a.no_build:
            log("cargo build --release -p antenne -p antenne-bench ...")
            if subprocess.run(["cargo", "build", "--release", "-p", "antenne", "-p",
                               "antenne-bench"], cwd=rb.REPO, stdout=sys.stderr).returncode:
                sys.exit("cargo build failed")
        clip = rb.pre_encode(rb.clip_path(a.clip_seconds, a.kbps), a.clip_seconds, a.kbps)
        _ca, cert, key = rb.make_pki(ctx.tmp)
        ctx.peers = rb.Peers(bench_bin, ctx.tmp, clip, cert, key)
        results = {}
        for k in ks:
            results[("antenne", k)] = run_antenne(k, ctx)
        if ctx.encoder_args is None:
            sys.exit("no encoder command line to copy: every antenne run failed")
        log("encoder: " + " ".join(ctx.encoder_args))
        for k in ks:
            if k <= a.peers_max_k and "ffmpeg-per-dest" in a.designs:
                results[("ffmpeg-per-dest", k)] = run_peers(k, ctx)
        lat = None if a.no_latency else latency(rb.REPO)
        print(rb.machine_line())
        print_table(results, ks, a.seconds)
        if lat:
            print(f"\nAdded latency (in-process, tests/renditions/measure.rs): {lat.strip()}")
        print(f"\nLoad at start: {load_start}\nLoad at end:   {rb.uptime()}")
        ok = True
    except KeyboardInterrupt:
        raise SystemExit(130)
    finally:
        rb.PROCS.kill_all()
        if ok:
            shutil.rmtree(ctx.tmp, ignore_errors=True)
        else:
            log(f"logs kept in {ctx.tmp}")


if __name__ == "__main__":
    main()
