#!/usr/bin/env python3
"""SRT ingest vs RTMP ingest: antenne's CPU with the same stream coming in
either way and fanned out to N destinations (an nginx-rtmp sink, `live on`,
no recording).

    python3 bench/srt_ingest_bench.py [--n 0 10 50] [--secs 15] [--bin target/release/antenne]

The publisher is ffmpeg copying one clip (1280x720 30 fps x264 + AAC,
~6 Mbit/s, encoded once into target/antenne-bench/) in real time, as FLV
over RTMP or as MPEG-TS over SRT; CPU is antenne's own (utime + stime from
/proc over --secs, after 6 s of warm-up), in % of one core. Per destination
= (CPU at N - CPU at 0) / N. Hop latency is not measured here: relay_bench.py
matches frames by content from its own RTMP publisher, which has no SRT
side yet.
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


def start_nginx(tmp):
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off; master_process off; worker_processes 1;
error_log {tmp}/nginx-error.log; pid {tmp}/nginx.pid;
events {{ worker_connections 4096; }}
rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096;
  application live {{ live on; record off; }} }} }}
""")
    p = subprocess.Popen(["nginx", "-c", conf, "-p", tmp],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return p, port


def run(binary, ingest, n, secs, clip, nginx_port, tmp):
    rtmp, http, srt = free_port(), free_port(), free_port()
    data = tempfile.mkdtemp(dir=tmp)
    os.chmod(data, 0o700)
    env = dict(os.environ, ANTENNE_API_TOKEN=TOKEN, ANTENNE_ADMIN_PASSWORD="bench-password-123",
               RUST_LOG="warn")
    log = open(os.path.join(tmp, f"antenne-{ingest}-{n}.log"), "w")
    a = subprocess.Popen([binary, "--rtmp-listen", f"127.0.0.1:{rtmp}", "--http-listen",
                          f"127.0.0.1:{http}", "--srt-listen", f"127.0.0.1:{srt}",
                          "--data-dir", data, "--ingest-key", KEY],
                         env=env, stdout=log, stderr=log)
    pub = None
    try:
        for _ in range(100):
            try:
                api(http, "GET", "/health")
                break
            except Exception:
                time.sleep(0.1)
        for i in range(n):
            api(http, "POST", "/destinations", {"name": f"d{i}", "url": f"rtmp://127.0.0.1:{nginx_port}/live",
                                                 "key": f"{ingest}{n}_{i}", "enabled": True})
        if ingest == "rtmp":
            out = ["-f", "flv", f"rtmp://127.0.0.1:{rtmp}/live/{KEY}"]
        else:
            out = ["-f", "mpegts", f"srt://127.0.0.1:{srt}?streamid={KEY}"]
        pub = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                                "-stream_loop", "-1", "-i", clip, "-c", "copy"] + out,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(6)
        live = sum(1 for d in api(http, "GET", "/destinations") if d["status"]["state"] == "live")
        c0, t0 = cpu_seconds(a.pid), time.monotonic()
        time.sleep(secs)
        c1, t1 = cpu_seconds(a.pid), time.monotonic()
        ingest_live = api(http, "GET", "/ingest")["ingests"][0]["live"]
        return {"cpu": 100 * (c1 - c0) / (t1 - t0), "live": live, "ingest_live": ingest_live}
    finally:
        if pub:
            pub.send_signal(signal.SIGINT)
            try:
                pub.wait(5)
            except subprocess.TimeoutExpired:
                pub.kill()
        a.terminate()
        try:
            a.wait(10)
        except subprocess.TimeoutExpired:
            a.kill()
        log.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[0, 10, 50])
    ap.add_argument("--secs", type=float, default=15)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "antenne"))
    args = ap.parse_args()
    if not os.path.exists(args.bin):
        sys.exit(f"{args.bin}: build it first (cargo build --release -p antenne)")
    clip = clip_path()
    tmp = tempfile.mkdtemp(prefix="antenne-srt-bench-")
    nginx, nginx_port = start_nginx(tmp)
    rows = {}
    try:
        for n in args.n:
            for ingest in ("rtmp", "srt"):
                r = run(args.bin, ingest, n, args.secs, clip, nginx_port, tmp)
                rows[(ingest, n)] = r
                print(f"{ingest:4} N={n:4}: CPU {r['cpu']:6.2f} % of a core, "
                      f"{r['live']}/{n} destinations live, ingest live {r['ingest_live']}", flush=True)
    finally:
        nginx.terminate()
        nginx.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print("| ingest | N | CPU % | CPU %/dest |")
    print("|---|---:|---:|---:|")
    for (ingest, n), r in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        base = rows.get((ingest, 0))
        per = (r["cpu"] - base["cpu"]) / n if base and n else None
        print(f"| {ingest} | {n} | {r['cpu']:.2f} | {per:.3f} |" if per is not None
              else f"| {ingest} | {n} | {r['cpu']:.2f} | — |")


if __name__ == "__main__":
    main()
