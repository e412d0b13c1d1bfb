#!/usr/bin/env python3
"""Relay benchmark: what does it cost to fan one RTMP stream out to N
destinations?

Relays the same pre-encoded 720p30 ~4.5 Mbit/s H.264+AAC stream to N
receivers through three designs and prints CPU and memory of the relay:

  antenne          antenne (target/release/antenne), destinations via its API
  nginx-push       nginx-rtmp with N `push` lines in `application live`
  ffmpeg-per-dest  nginx-rtmp relay (no push) + N `ffmpeg -c copy` processes

The receivers are one separate nginx-rtmp instance (not measured). Every
process the script starts is killed on every exit path. Python 3 stdlib
only. See bench/README.md for the definitions used in the table.

    python3 bench/relay_bench.py [--n 1,10,50] [--seconds 15]
                                 [--designs antenne,nginx-push,ffmpeg-per-dest]

Progress goes to stderr; the result tables go to stdout.
"""

import argparse
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DESIGNS = ("antenne", "nginx-push", "ffmpeg-per-dest")
TAGS = {"antenne": "a", "nginx-push": "p", "ffmpeg-per-dest": "f"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024.0 * 1024.0


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

class Procs:
    """Every child is started in its own session (process group = its pid),
    so that killing the group also stops what it forked (nginx workers)."""

    def __init__(self):
        self.procs = []

    def spawn(self, name, args, log_path, env=None, cwd=None):
        out = open(log_path, "ab")
        try:
            p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                 start_new_session=True)
        finally:
            out.close()
        p.bench_name = name
        p.bench_log = log_path
        self.procs.append(p)
        return p

    def kill(self, procs, grace=3.0):
        procs = [p for p in procs if p in self.procs]
        for p in procs:
            self._signal(p, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in procs:
            try:
                p.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in procs:
            # SIGKILL the whole group: also catches children left behind.
            self._signal(p, signal.SIGKILL)
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            self.procs.remove(p)

    @staticmethod
    def _signal(p, sig):
        try:
            os.killpg(p.pid, sig)
        except (ProcessLookupError, PermissionError):
            if p.poll() is None:
                try:
                    p.send_signal(sig)
                except ProcessLookupError:
                    pass

    def kill_all(self):
        if self.procs:
            self.kill(list(self.procs), grace=2.0)


PROCS = Procs()


def _on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def tail(path, lines=30):
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "replace").splitlines()
    except OSError as e:
        return f"(cannot read {path}: {e})"
    return "\n".join(data[-lines:])


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(timeout, cond, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        r = cond()
        if r:
            return r
        if time.monotonic() >= deadline:
            return r
        time.sleep(interval)


# ---------------------------------------------------------------- /proc

def proc_stat(pid):
    """(ppid, utime+stime ticks) or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    # rest[0] is field 3 (state): ppid = field 4, utime = 14, stime = 15
    return int(rest[1]), int(rest[11]) + int(rest[12])


def proc_kib(pid, path, key):
    try:
        with open(f"/proc/{pid}/{path}") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        return None
    return 0


def descendants(root):
    """root and every process below it (via the ppid in /proc/*/stat)."""
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st:
                children.setdefault(st[0], []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def host_ticks():
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    idle = v[3] + v[4]  # idle + iowait
    return sum(v) - idle, sum(v)


def measure(pids, seconds):
    """CPU (% of one core) and mean RSS/PSS (MiB) summed over `pids`, plus
    how busy the whole machine was (% of one core, so max = 100 * nproc)."""
    host0 = host_ticks()
    ticks0 = {}
    for pid in pids:
        st = proc_stat(pid)
        if st:
            ticks0[pid] = st[1]
    t0 = time.monotonic()
    rss, pss = [], []
    end = t0 + seconds
    while True:
        rss.append(sum(proc_kib(p, "status", "VmRSS:") or 0 for p in pids))
        pss.append(sum(proc_kib(p, "smaps_rollup", "Pss:") or 0 for p in pids))
        now = time.monotonic()
        if now >= end:
            break
        time.sleep(min(1.0, end - now))
    ticks, vanished = 0, []
    for pid, t in ticks0.items():
        st = proc_stat(pid)
        if st is None:
            vanished.append(pid)
        else:
            ticks += st[1] - t
    wall = time.monotonic() - t0
    host1 = host_ticks()
    return {
        "host_busy": (host1[0] - host0[0]) / CLK_TCK / wall * 100.0,
        "cpu": ticks / CLK_TCK / wall * 100.0,
        "rss": sum(rss) / len(rss) / 1024.0,
        "pss": sum(pss) / len(pss) / 1024.0,
        "nprocs": len(ticks0),
        "vanished": vanished,
        "wall": wall,
    }


# ---------------------------------------------------------------- HTTP

# antenne's API needs a token: the benchmark gives its antenne this one.
API_TOKEN = "bench-" + os.urandom(8).hex()


def http_json(method, url, body=None, timeout=5.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {API_TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError):
        return None, None


def http_text(url, timeout=5.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError):
        return None


# ---------------------------------------------------------------- nginx

class Nginx:
    """An nginx-rtmp instance in its own temp prefix, `daemon off`, with an
    http `rtmp_stat` endpoint (polled only outside measurement windows)."""

    def __init__(self, name, root, pushes=(), master=True, log_level="warn"):
        self.name = name
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.http_port = free_port()
        pushes = "".join(f"      push {u};\n" for u in pushes)
        d = self.dir
        conf = f"""load_module {RTMP_MODULE};
daemon off;
user root;
master_process {'on' if master else 'off'};
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log {log_level};
events {{ worker_connections 4096; }}
rtmp {{
  server {{
    listen 127.0.0.1:{self.port};
    chunk_size 4096;
    application live {{
      live on;
      record off;
{pushes}    }}
  }}
}}
http {{
  access_log off;
  client_body_temp_path {d}/client_body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{self.http_port};
    location /stat {{ rtmp_stat all; }}
  }}
}}
"""
        self.conf = os.path.join(d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.log = os.path.join(d, "nginx.out.log")
        self.error_log = os.path.join(d, "error.log")
        self.proc = None

    def start(self):
        self.proc = PROCS.spawn(
            self.name,
            ["nginx", "-p", self.dir + "/", "-c", self.conf, "-e", self.error_log],
            self.log, cwd=self.dir)
        ok = wait_until(10, lambda: self.proc.poll() is not None
                        or (port_accepts(self.port) and port_accepts(self.http_port)))
        if self.proc.poll() is not None or not ok:
            raise RuntimeError(f"nginx {self.name} did not start:\n{tail(self.log)}\n"
                               f"{tail(self.error_log)}")
        return self

    def stop(self):
        if self.proc:
            PROCS.kill([self.proc])
            self.proc = None

    def pids(self):
        return descendants(self.proc.pid) if self.proc else []

    def streams(self):
        """{stream name: (publishing, bytes_in)} of application `live`."""
        text = http_text(f"http://127.0.0.1:{self.http_port}/stat")
        if text is None:
            return {}
        try:
            root = ET.fromstring(text)
        except ET.ParseError:
            return {}
        out = {}
        for app in root.iter("application"):
            if (app.findtext("name") or "") != "live":
                continue
            for s in app.iter("stream"):
                name = s.findtext("name") or ""
                out[name] = (s.find("publishing") is not None,
                             int(s.findtext("bytes_in") or 0))
        return out

    def url(self, stream=None):
        base = f"rtmp://127.0.0.1:{self.port}/live"
        return base if stream is None else f"{base}/{stream}"


# ---------------------------------------------------------------- stream

def pre_encode(tmp, seconds):
    path = os.path.join(tmp, "stream.flv")
    log(f"pre-encoding {seconds} s of 1280x720p30 H.264 4500k + AAC 160k ...")
    # testsrc2 with temporal noise: hard enough to compress that x264 really
    # spends the 4.5 Mbit/s instead of undershooting on a synthetic pattern.
    args = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
        "-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.2:sample_rate=48000",
        "-t", str(seconds),
        "-vf", "noise=alls=14:allf=t,format=yuv420p",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-b:v", "4500k", "-maxrate", "4500k", "-bufsize", "9000k",
        "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "160k", "-ac", "2", "-ar", "48000",
        "-f", "flv", path,
    ]
    t0 = time.monotonic()
    subprocess.run(args, check=True)
    log(f"pre-encoded in {time.monotonic() - t0:.0f} s")
    return path


def probe_bitrate(path):
    """(total kbit/s, video kbit/s, audio kbit/s, duration s) of the file."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration,bit_rate",
         "-of", "json", path], capture_output=True, text=True, check=True).stdout
    fmt = json.loads(out)["format"]
    dur = float(fmt["duration"])
    total = float(fmt.get("bit_rate") or os.path.getsize(path) * 8 / dur) / 1000

    def stream_kbps(sel):
        r = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", sel,
             "-show_entries", "packet=size", "-of", "csv=p=0", path],
            capture_output=True, text=True, check=True).stdout
        return sum(int(x) for x in r.split() if x.strip().isdigit()) * 8 / dur / 1000

    return total, stream_kbps("v:0"), stream_kbps("a:0"), dur


def start_publisher(case_dir, flv, url):
    return PROCS.spawn(
        "publisher",
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning",
         "-re", "-stream_loop", "-1", "-i", flv, "-c", "copy", "-f", "flv", url],
        os.path.join(case_dir, "publisher.log"))


# ---------------------------------------------------------------- designs

class CaseError(Exception):
    pass


def wait_receiver(receiver, names, timeout):
    """Wait until every name publishes to the receiver with bytes flowing."""
    want = set(names)

    def live():
        st = receiver.streams()
        return {n for n in want if n in st and st[n][0] and st[n][1] > 0}

    wait_until(timeout, lambda: live() == want, interval=0.5)
    return len(live())


def recv_bytes(receiver, names):
    st = receiver.streams()
    return {n: st[n][1] for n in names if n in st and st[n][0]}


class AntenneRelay:
    def __init__(self, binary, case_dir):
        self.binary = binary
        self.dir = case_dir
        self.port = free_port()
        self.http = free_port()
        self.log = os.path.join(case_dir, "antenne.log")
        self.api = f"http://127.0.0.1:{self.http}/api/v1"
        self.proc = None

    def start(self):
        env = dict(os.environ, ANTENNE_LOG="warn", ANTENNE_API_TOKEN=API_TOKEN)
        data = os.path.join(self.dir, "data")
        self.proc = PROCS.spawn(
            "antenne",
            [self.binary, "--rtmp-listen", f"127.0.0.1:{self.port}",
             "--http-listen", f"127.0.0.1:{self.http}", "--data-dir", data,
             "--ingest-key", "bench"], self.log, env=env)
        ok = wait_until(15, lambda: self.proc.poll() is not None
                        or http_json("GET", f"{self.api}/health")[0] == 200)
        if self.proc.poll() is not None or not ok:
            raise CaseError(f"antenne did not become healthy; log tail:\n{tail(self.log)}")

    def ingest_live(self):
        code, body = http_json("GET", f"{self.api}/ingest")
        if code != 200 or not isinstance(body, dict):
            return None
        for i in body.get("ingests", []):
            if i.get("live"):
                return i
        return None

    def add(self, name, url, key):
        code, body = http_json("POST", f"{self.api}/destinations",
                               {"name": name, "url": url, "key": key, "enabled": True})
        if code != 201:
            raise CaseError(f"POST /destinations for {name} answered {code}: {body}\n"
                            f"log tail:\n{tail(self.log)}")

    def destinations(self):
        code, body = http_json("GET", f"{self.api}/destinations")
        return body if code == 200 and isinstance(body, list) else []

    def pids(self):
        return [self.proc.pid] if self.proc and self.proc.poll() is None else []


def summarize_dests(dests):
    states = {}
    for d in dests:
        s = (d.get("status") or {}).get("state", "?")
        states[s] = states.get(s, 0) + 1
    st = [d.get("status") or {} for d in dests]
    return {
        "states": states,
        "live": states.get("live", 0),
        "dropped": sum(int(s.get("dropped_frames") or 0) for s in st),
        "bytes": sum(int(s.get("bytes_sent") or 0) for s in st),
        "reconnects": sum(int(s.get("reconnects") or 0) for s in st),
        "errors": sorted({str(s.get("last_error")) for s in st if s.get("last_error")}),
    }


def run_case(design, n, ctx):
    """Start relay + publisher (+ N destinations), measure, stop. Returns a
    result dict (with 'error' set when something went wrong)."""
    tag = f"{TAGS[design]}{n}_"
    names = [f"{tag}s{k}" for k in range(1, n + 1)]
    case_dir = os.path.join(ctx.tmp, f"{design}-{n}")
    os.makedirs(case_dir, exist_ok=True)
    receiver = ctx.receiver
    res = {"design": design, "n": n, "notes": [], "log": None}
    started = []
    t_case = time.monotonic()
    try:
        if design == "antenne":
            relay = AntenneRelay(ctx.antenne_bin, case_dir)
            res["log"] = relay.log
            relay.start()
            started.append(relay.proc)
            started.append(start_publisher(case_dir, ctx.flv,
                                           f"rtmp://127.0.0.1:{relay.port}/live/bench"))
            if not wait_until(20, relay.ingest_live, interval=0.5):
                raise CaseError(f"ingest never went live; antenne log tail:\n{tail(relay.log)}\n"
                                f"publisher log:\n{tail(os.path.join(case_dir, 'publisher.log'))}")
            for k, name in enumerate(names, 1):
                relay.add(f"r{k}", receiver.url(), name)
            pids_fn = relay.pids
        else:
            pushes = [receiver.url(nm) for nm in names] if design == "nginx-push" else []
            relay = Nginx(f"relay-{design}-{n}", case_dir, pushes=pushes, master=True)
            res["log"] = relay.error_log
            relay.start()
            started.append(relay.proc)
            started.append(start_publisher(case_dir, ctx.flv, relay.url("bench")))
            if not wait_until(20, lambda: relay.streams().get("bench", (False, 0))[0],
                              interval=0.5):
                raise CaseError(f"ingest never went live at nginx; error log:\n"
                                f"{tail(relay.error_log)}\npublisher log:\n"
                                f"{tail(os.path.join(case_dir, 'publisher.log'))}")
            ffmpegs = []
            if design == "ffmpeg-per-dest":
                for name in names:
                    p = PROCS.spawn(
                        f"ffmpeg-{name}",
                        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning",
                         "-i", relay.url("bench"), "-c", "copy", "-f", "flv",
                         receiver.url(name)],
                        os.path.join(case_dir, f"ffmpeg-{name}.log"))
                    ffmpegs.append(p)
                    started.append(p)
                    time.sleep(0.02)

            def pids_fn(relay=relay, ffmpegs=ffmpegs):
                return relay.pids() + [p.pid for p in ffmpegs if p.poll() is None]

        # Wait until every destination receives, then let things settle.
        if n:
            live = wait_receiver(receiver, names, 20 + 0.5 * n)
            if live != n:
                res["notes"].append(f"only {live}/{n} streams arrived at the receiver")
                if design == "antenne":
                    s = summarize_dests(relay.destinations())
                    log(f"antenne: destination states {s['states']}, errors {s['errors']}\n"
                        f"antenne log tail:\n{tail(relay.log)}")
        time.sleep(ctx.settle)

        pids = pids_fn()
        before_api = summarize_dests(relay.destinations()) if design == "antenne" else None
        before_rx = recv_bytes(receiver, names)
        m = measure(pids, ctx.seconds)
        after_rx = recv_bytes(receiver, names)
        after_api = summarize_dests(relay.destinations()) if design == "antenne" else None
        res.update(m)

        rates = [(after_rx[nm] - before_rx[nm]) * 8 / m["wall"] / 1e6
                 for nm in names if nm in after_rx and nm in before_rx]
        res["rx_live"] = len(after_rx)
        res["rx_min"] = min(rates) if rates else None
        res["rx_mean"] = sum(rates) / len(rates) if rates else None
        if m["vanished"]:
            res["notes"].append(f"{len(m['vanished'])} process(es) exited during the window")
        if design == "ffmpeg-per-dest":
            dead = [p for p in ffmpegs if p.poll() is not None]
            if dead:
                res["notes"].append(f"{len(dead)} ffmpeg exited; e.g. "
                                    f"{tail(dead[0].bench_log, 3)}")
        if design == "antenne":
            res["api_live"] = after_api["live"]
            res["dropped_total"] = after_api["dropped"]
            res["dropped_window"] = after_api["dropped"] - before_api["dropped"]
            res["reconnects"] = after_api["reconnects"]
            res["api_mbps"] = ((after_api["bytes"] - before_api["bytes"]) * 8 / m["wall"]
                               / 1e6 / n) if n else None
            if n and after_api["live"] != n:
                res["notes"].append(f"antenne: only {after_api['live']}/{n} live "
                                    f"({after_api['states']}, errors {after_api['errors']})")
            if after_api["dropped"] or after_api["reconnects"]:
                res["notes"].append(f"antenne: {after_api['dropped']} frames dropped, "
                                    f"{after_api['reconnects']} reconnects")
        for p in started:
            core = p.bench_name in ("antenne", "publisher") or p.bench_name.startswith("relay-")
            if core and p.poll() is not None:
                res["notes"].append(f"{p.bench_name} exited with {p.returncode}")
        if res["notes"] and res["log"]:
            log(f"{design} N={n}: " + "; ".join(res["notes"]) +
                f"\nrelay log tail ({res['log']}):\n{tail(res['log'], 20)}")
    except CaseError as e:
        res["error"] = str(e)
        log(f"{design} N={n} FAILED: {e}")
    finally:
        PROCS.kill(started)
    log(f"{design:16s} N={n:3d}: cpu {res.get('cpu', float('nan')):6.1f} %  "
        f"rss {res.get('rss', float('nan')):7.1f} MiB  pss {res.get('pss', float('nan')):7.1f} MiB  "
        f"procs {res.get('nprocs', 0)}  host {res.get('host_busy', float('nan')):.0f} %  "
        f"rx {res.get('rx_live', 0)}/{n}  "
        f"({time.monotonic() - t_case:.0f} s)")
    return res


# ---------------------------------------------------------------- output

def fmt(x, spec=".1f", none="—"):
    if x is None:
        return none
    out = format(x, spec)
    return out[1:] if out.startswith("-") and float(out) == 0 else out


def ratio(a, b):
    if a is None or b is None or b <= 0:
        return None
    return a / b


def per_dest(results, design, n, key):
    base = results.get((design, 0))
    r = results.get((design, n))
    if not n or not base or not r or key not in base or key not in r:
        return None
    return (r[key] - base[key]) / n


def print_tables(results, designs, ns, machine, stream, seconds):
    out = []
    out.append("| design | N | CPU % (one core) | RSS MiB | CPU %/dest | MiB/dest "
               "| CPU/dest vs antenne | MiB/dest vs antenne |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for d in designs:
        for n in [0] + ns:
            r = results.get((d, n))
            if not r or "cpu" not in r:
                out.append(f"| {d} | {n} | failed | | | | | |")
                continue
            cpd = per_dest(results, d, n, "cpu")
            mpd = per_dest(results, d, n, "rss")
            acpd = per_dest(results, "antenne", n, "cpu")
            ampd = per_dest(results, "antenne", n, "rss")
            rc, rm = ratio(cpd, acpd), ratio(mpd, ampd)
            out.append(
                f"| {d} | {n if n else '0 (ingest only)'} | {r['cpu']:.1f} | {r['rss']:.1f} "
                f"| {fmt(cpd, '.2f')} | {fmt(mpd, '.2f')} "
                f"| {fmt(rc, '.2f', '—') + ('×' if rc is not None else '')} "
                f"| {fmt(rm, '.2f', '—') + ('×' if rm is not None else '')} |")
    out.append("")
    out.append(machine)
    out.append(stream)
    out.append(f"Per dest = (value at N - value at N=0 with the ingest running) / N, same design. "
               f"CPU resolution: 1 clock tick per {seconds:g} s window = "
               f"{100.0 / CLK_TCK / seconds:.2f} % of one core, so per-dest figures at N=1 "
               f"(and ratios to them) are mostly noise. RSS is summed over processes "
               f"(shared pages counted once per process; see PSS below).")
    out.append("")
    out.append("Checks (not part of the comparison). PSS = proportional set size (shared pages "
               "split between the processes sharing them). Host busy = CPU of the whole machine "
               "during the window (publisher, receiver, relay and anything else running), "
               "% of one core, max 100 x nproc.")
    out.append("")
    out.append("| design | N | relay procs | PSS MiB | PSS MiB/dest | host busy % | streams at receiver "
               "| Mbit/s per dest at receiver (min / mean) | antenne live (bytes_sent rate) | antenne dropped frames | notes |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for d in designs:
        for n in [0] + ns:
            r = results.get((d, n)) or {}
            if "cpu" not in r:
                out.append(f"| {d} | {n} | | | | | | | | | {r.get('error', 'not run')[:200]!r} |")
                continue
            rx = (f"{fmt(r.get('rx_min'), '.2f')} / {fmt(r.get('rx_mean'), '.2f')}"
                  if n else "—")
            alive = (f"{r.get('api_live', 0)}/{n}, sent {fmt(r.get('api_mbps'), '.2f')} Mbit/s/dest"
                     if d == "antenne" and n else "—")
            drop = (f"{r.get('dropped_total', 0)} (window {r.get('dropped_window', 0)})"
                    if d == "antenne" else "—")
            notes = "; ".join(r.get("notes", [])).replace("\n", " ").replace("|", "/")
            out.append(f"| {d} | {n} | {r['nprocs']} | {r['pss']:.1f} "
                       f"| {fmt(per_dest(results, d, n, 'pss'), '.2f')} | {r['host_busy']:.0f} "
                       f"| {r.get('rx_live', 0) if n else '—'}{('/' + str(n)) if n else ''} "
                       f"| {rx} | {alive} | {drop} | {notes[:300]} |")
    print("\n".join(out), flush=True)


def machine_line():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) / 1024 / 1024
    except (OSError, ValueError, IndexError):
        mem = 0
    return f"Machine: nproc={ncpu}, CPU: {model}, RAM {mem:.0f} GiB, kernel {os.uname().release}."


# ---------------------------------------------------------------- main

class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", default="1,10,50",
                    help="comma-separated destination counts (default 1,10,50)")
    ap.add_argument("--seconds", type=float, default=15.0,
                    help="measurement window per run (default 15)")
    ap.add_argument("--designs", default=",".join(DESIGNS),
                    help=f"comma-separated subset of {','.join(DESIGNS)}")
    ap.add_argument("--settle", type=float, default=5.0,
                    help="seconds to wait after all destinations receive (default 5)")
    ap.add_argument("--clip-seconds", type=int, default=30,
                    help="length of the pre-encoded (looped) clip (default 30)")
    ap.add_argument("--no-build", action="store_true",
                    help="do not run cargo build (use the existing binary)")
    ap.add_argument("--keep-tmp", action="store_true",
                    help="keep the temp dir (logs, configs) after the run")
    a = ap.parse_args()

    ns = sorted({int(x) for x in a.n.split(",") if x.strip()})
    if any(n < 1 for n in ns):
        ap.error("--n values must be >= 1")
    designs = [d.strip() for d in a.designs.split(",") if d.strip()]
    for d in designs:
        if d not in DESIGNS:
            ap.error(f"unknown design {d!r} (known: {', '.join(DESIGNS)})")
    for prog in ("ffmpeg", "ffprobe", "nginx"):
        if not shutil.which(prog):
            sys.exit(f"{prog} not found in PATH")
    if not os.path.isfile(RTMP_MODULE):
        sys.exit(f"{RTMP_MODULE} missing (Debian package libnginx-mod-rtmp)")

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    atexit.register(PROCS.kill_all)

    t_start = time.monotonic()
    ctx = Ctx()
    ctx.seconds, ctx.settle = a.seconds, a.settle
    ctx.tmp = tempfile.mkdtemp(prefix="antenne-bench-")
    log(f"temp dir {ctx.tmp}")
    ok = False
    try:
        if "antenne" in designs:
            target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
            ctx.antenne_bin = os.path.join(target, "release", "antenne")
            if not a.no_build:
                log("cargo build --release -p antenne ...")
                r = subprocess.run(["cargo", "build", "--release", "-p", "antenne"],
                                   cwd=REPO, stdout=sys.stderr, stderr=sys.stderr)
                if r.returncode != 0:
                    sys.exit("cargo build failed")
            if not os.access(ctx.antenne_bin, os.X_OK):
                sys.exit(f"{ctx.antenne_bin} missing")

        ctx.flv = pre_encode(ctx.tmp, a.clip_seconds)
        total, vk, ak, dur = probe_bitrate(ctx.flv)
        stream = (f"Stream: pre-encoded {dur:.1f} s FLV looped with `-c copy`, 1280x720 30 fps "
                  f"H.264 (x264 veryfast, testsrc2+noise, GOP 60) + AAC; ffprobe: "
                  f"{total / 1000:.2f} Mbit/s total (video {vk / 1000:.2f} Mbit/s, "
                  f"audio {ak:.0f} kbit/s).")
        log(stream)

        ctx.receiver = Nginx("receiver", ctx.tmp, master=False, log_level="error").start()
        log(f"receiver nginx on 127.0.0.1:{ctx.receiver.port}")

        results = {}
        for d in designs:
            for n in [0] + ns:
                results[(d, n)] = run_case(d, n, ctx)
                if not ctx.receiver.proc or ctx.receiver.proc.poll() is not None:
                    raise RuntimeError(f"receiver nginx died:\n{tail(ctx.receiver.error_log)}")

        print_tables(results, designs, ns, machine_line(), stream, a.seconds)
        print(f"\nRun time: {time.monotonic() - t_start:.0f} s "
              f"(window {a.seconds:g} s, settle {a.settle:g} s per run).", flush=True)
        ok = True
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); stopping everything")
        raise SystemExit(130)
    finally:
        PROCS.kill_all()
        if a.keep_tmp or not ok:
            log(f"logs kept in {ctx.tmp}")
        else:
            shutil.rmtree(ctx.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
