#!/usr/bin/env python3
"""SRT ingest vs RTMP ingest: antenne's hop latency and CPU with the same
stream coming in either way and fanned out to N destinations, side by side.

    python3 bench/srt_ingest_bench.py [--n 0 10 50] [--secs 15] [--ingests direct rtmp srt]
        [--srt-latency-ms MS] [--bin target/release/antenne] [--bench-bin target/release/antenne-bench]

The peers are antenne-bench (crates/bench, see bench/README.md): its
real-time publisher plays one clip (1280x720 30 fps x264 + AAC, ~6 Mbit/s,
encoded once into target/antenne-bench/) and its sink receives every
destination, with one clock for both ends. Between the publisher and antenne
sits one ffmpeg (`-c copy`, the libavformat muxers OBS uses too), so the
stream reaches antenne either
- `rtmp`: as FLV over RTMP (ffmpeg `-f flv`), or
- `srt`: as MPEG-TS over SRT (ffmpeg `-f mpegts srt://…`, libsrt's default
  120 ms latency),
and, as a baseline, `direct`: antenne-bench publishing RTMP to antenne with
no ffmpeg. Both the rtmp and srt rows pay the same ffmpeg remux; their
difference is the ingest.

Hop latency = publisher's write of a video message → the message complete at
the sink's socket (kernel receive timestamp), p50/p99/max over every video
message of every destination inside the window. Messages are matched by
their last eight bytes alone (antenne-bench --match-tail-only): the MPEG-TS
path changes a message's length (Annex B start codes, access unit
delimiters) but not the end of its last slice. "missing" = video messages
published in the window that a destination did not get (summed).

CPU is antenne's own (utime + stime from /proc over --secs, after 6 s of
warm-up), in % of one core. Per destination = (CPU at N - CPU at 0) / N.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

KEY = "bench_srt_ingest_key_0123456789"
TOKEN = "bench-token-0123456789abcdef"
KINDS = ("direct", "rtmp", "srt")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clip_path():
    d = os.path.join(ROOT, "target", "antenne-bench")
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, "srt-clip-720p30-6000k-20s.flv")
    if not os.path.exists(p):
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
             "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
             "-t", "20", "-c:v", "libx264", "-preset", "veryfast", "-g", "60",
             "-b:v", "6000k", "-maxrate", "6000k", "-bufsize", "12000k",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-f", "flv", p],
            check=True)
    return p


def api(port, method, path, body=None):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        data = r.read()
        return json.loads(data) if data else None


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Peers:
    """antenne-bench (publisher + sink), driven by JSON lines on stdin."""

    def __init__(self, binary, clip, tmp):
        self.log = open(os.path.join(tmp, "antenne-bench.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "--clip", clip, "--listen", "127.0.0.1:0", "--match-tail-only"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.seq = 0
        ready = json.loads(self.proc.stdout.readline() or "{}")
        if ready.get("event") != "ready":
            raise RuntimeError(f"antenne-bench did not start: {ready}")
        self.port = ready["port"]
        self.clip = ready["clip"]

    def cmd(self, **c):
        self.seq += 1
        c["seq"] = self.seq
        self.proc.stdin.write(json.dumps(c) + "\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("antenne-bench exited")
            answer = json.loads(line)
            if answer.get("seq") == self.seq:
                return answer

    def close(self):
        try:
            self.cmd(cmd="quit")
        except Exception:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def stop(p, sig=signal.SIGTERM):
    if p and p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run(binary, ingest, n, secs, peers, tmp, srt_latency_ms=None):
    rtmp, http, srt, remux_port = free_port(), free_port(), free_port(), free_port()
    data = tempfile.mkdtemp(dir=tmp)
    os.chmod(data, 0o700)
    env = dict(os.environ, ANTENNE_API_TOKEN=TOKEN, ANTENNE_ADMIN_PASSWORD="bench-password-123",
               RUST_LOG="warn")
    log = open(os.path.join(tmp, f"antenne-{ingest}-{n}.log"), "w")
    a = subprocess.Popen([binary, "--rtmp-listen", f"127.0.0.1:{rtmp}", "--http-listen",
                          f"127.0.0.1:{http}", "--srt-listen", f"127.0.0.1:{srt}",
                          "--data-dir", data, "--ingest-key", KEY]
                         + (["--srt-latency-ms", str(srt_latency_ms)] if srt_latency_ms is not None else []),
                         env=env, stdout=log, stderr=log)
    remux = None
    prefix = f"{ingest}{n}_"
    try:
        for _ in range(100):
            try:
                api(http, "GET", "/health")
                break
            except Exception:
                time.sleep(0.1)
        for i in range(n):
            api(http, "POST", "/destinations", {"name": f"d{i}", "url": f"rtmp://127.0.0.1:{peers.port}/live",
                                                 "key": f"{prefix}{i}", "enabled": True})
        if ingest == "direct":
            url = f"rtmp://127.0.0.1:{rtmp}/live/{KEY}"
        else:
            if ingest == "rtmp":
                out = ["-f", "flv", f"rtmp://127.0.0.1:{rtmp}/live/{KEY}"]
            else:
                out = ["-muxdelay", "0", "-muxpreload", "0", "-f", "mpegts",
                       f"srt://127.0.0.1:{srt}?streamid={KEY}"
                       + (f"&latency={srt_latency_ms * 1000}" if srt_latency_ms is not None else "")]
            remux_log = open(os.path.join(tmp, f"ffmpeg-{ingest}-{n}.log"), "w")
            remux = subprocess.Popen(
                ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-listen", "1",
                 "-i", f"rtmp://127.0.0.1:{remux_port}/live/bench", "-c", "copy",
                 "-flush_packets", "1"] + out,
                stdout=subprocess.DEVNULL, stderr=remux_log)
            remux_log.close()
            url = f"rtmp://127.0.0.1:{remux_port}/live/bench"
        answer = {}
        for _ in range(50):  # until ffmpeg listens
            answer = peers.cmd(cmd="publish", url=url)
            if answer.get("ok"):
                break
            time.sleep(0.2)
        if not answer.get("ok"):
            raise RuntimeError(f"publish to {url}: {answer}")
        time.sleep(6)
        live = sum(1 for d in api(http, "GET", "/destinations") if d["status"]["state"] == "live")
        peers.cmd(cmd="window_start", prefix=prefix)
        c0, t0 = cpu_seconds(a.pid), time.monotonic()
        time.sleep(secs)
        c1, t1 = cpu_seconds(a.pid), time.monotonic()
        ingest_live = api(http, "GET", "/ingest")["ingests"][0]["live"]
        w = peers.cmd(cmd="window_end", prefix=prefix, drain_ms=1000)
        return {"cpu": 100 * (c1 - c0) / (t1 - t0), "live": live, "ingest_live": ingest_live,
                "lat": w.get("lat_socket_ms", {}), "missing": w.get("video_missing"),
                "published": w.get("video_published")}
    finally:
        peers.cmd(cmd="unpublish")
        stop(remux, signal.SIGINT)
        stop(a)
        log.close()


def ms(v):
    return f"{v:.1f}" if isinstance(v, (int, float)) else "—"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[0, 10, 50])
    ap.add_argument("--secs", type=float, default=15)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "antenne"))
    ap.add_argument("--bench-bin", default=os.path.join(ROOT, "target", "release", "antenne-bench"))
    ap.add_argument("--ingests", nargs="+", choices=KINDS, default=list(KINDS))
    ap.add_argument("--srt-latency-ms", type=int,
                    help="SRT latency on both ends (antenne --srt-latency-ms, ffmpeg latency=); "
                         "default: libsrt's 120 ms")
    args = ap.parse_args()
    for b in (args.bin, args.bench_bin):
        if not os.path.exists(b):
            sys.exit(f"{b}: build it first (cargo build --release -p antenne -p antenne-bench)")
    clip = clip_path()
    tmp = tempfile.mkdtemp(prefix="antenne-srt-bench-")
    peers = Peers(args.bench_bin, clip, tmp)
    print(f"clip: {peers.clip}; load average before: {os.getloadavg()}", flush=True)
    rows = {}
    try:
        for n in args.n:
            for ingest in args.ingests:
                r = run(args.bin, ingest, n, args.secs, peers, tmp, args.srt_latency_ms)
                rows[(ingest, n)] = r
                lat = r["lat"]
                print(f"{ingest:6} N={n:4}: CPU {r['cpu']:6.2f} % of a core, "
                      f"{r['live']}/{n} destinations live, ingest live {r['ingest_live']}, "
                      f"hop p50 {ms(lat.get('p50'))} p99 {ms(lat.get('p99'))} max {ms(lat.get('max'))} ms "
                      f"over {lat.get('n')} messages, missing {r['missing']}/{r['published']}", flush=True)
    finally:
        peers.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average after: {os.getloadavg()}")
    print()
    print("| ingest | N | hop p50 ms | hop p99 ms | hop max ms | messages | missing | CPU % | CPU %/dest |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (ingest, n), r in sorted(rows.items(), key=lambda kv: (kv[0][1], KINDS.index(kv[0][0]))):
        base = rows.get((ingest, 0))
        per = f"{(r['cpu'] - base['cpu']) / n:.3f}" if base and n else "—"
        lat = r["lat"]
        msgs = lat.get("n") if n else "—"
        missing = r["missing"] if n else "—"
        print(f"| {ingest} | {n} | {ms(lat.get('p50'))} | {ms(lat.get('p99'))} | {ms(lat.get('max'))} "
              f"| {msgs} | {missing} | {r['cpu']:.2f} | {per} |")


if __name__ == "__main__":
    main()
