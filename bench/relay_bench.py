#!/usr/bin/env python3
"""Relay benchmark: what does it cost to fan one RTMP stream out to N
destinations, and how fast is the relay hop?

Relays the same pre-encoded 720p30 ~6 Mbit/s H.264+AAC stream to N
destinations through five designs and prints CPU, memory, drops, hop
latency and (antenne) enable-to-first-keyframe time:

  antenne             antenne (target/release/antenne), destinations via its API
  nginx-push          nginx-rtmp with N `push` lines in `application live`
  ffmpeg-per-dest     nginx-rtmp relay (no push) + N `ffmpeg -c copy` processes
  antenne-rtmps       antenne, rtmps:// destinations
  nginx-push-stunnel  nginx-rtmp push -> stunnel (client mode) -> rtmps

The publisher and the receiving end of every destination are one process,
`antenne-bench` (crates/bench): a real-time FLV publisher and a cheap RTMP
and RTMPS sink, on one clock. Every process the script starts is killed on
every exit path. Python 3 stdlib only. See bench/README.md for what is
measured and how.

    python3 bench/relay_bench.py [--quick] [--n 1,10,100,500,1000]
        [--tls-n 1,10,100,500] [--seconds 10] [--designs ...]

Progress goes to stderr; the result tables go to stdout.
"""

import argparse
import atexit
import json
import os
import queue
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DESIGNS = ("antenne", "nginx-push", "ffmpeg-per-dest", "antenne-rtmps", "nginx-push-stunnel")
TLS_DESIGNS = ("antenne-rtmps", "nginx-push-stunnel")
GROUPS = (("RTMP", ("antenne", "nginx-push", "ffmpeg-per-dest"), "antenne"),
          ("RTMPS", ("antenne-rtmps", "nginx-push-stunnel"), "antenne-rtmps"))
TAGS = {"antenne": "a", "nginx-push": "p", "ffmpeg-per-dest": "f",
        "antenne-rtmps": "at", "nginx-push-stunnel": "pt"}
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

    def spawn(self, name, args, log_path, env=None, cwd=None, pipes=False):
        out = open(log_path, "ab")
        try:
            p = subprocess.Popen(
                args, stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipes else out,
                stderr=out if pipes else subprocess.STDOUT,
                env=env, cwd=cwd, start_new_session=True)
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


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


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


def wakeups(pid):
    """(voluntary context switches, ns on CPU) summed over the threads of
    pid. A voluntary switch is the thread blocking (epoll_wait, futex, ...),
    so one per wake-up: unlike CPU %, this barely depends on how loaded the
    machine is. The ns come from schedstat: finer than 10 ms ticks."""
    total, ns = 0, 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0, 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total, ns


def host_ticks():
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    idle = v[3] + v[4]  # idle + iowait
    return sum(v) - idle, sum(v)


class Meter:
    """CPU (% of one core) and mean RSS/PSS (MiB) summed over groups of
    pids, between start() and stop(), plus how busy the whole machine was
    (% of one core, so max = 100 * nproc)."""

    def __init__(self, groups):
        self.groups = groups  # {name: [pids]}
        self.rss = {g: [] for g in groups}
        self.pss = {g: [] for g in groups}
        self.stop_ev = threading.Event()

    def _sample(self):
        for g, pids in self.groups.items():
            self.rss[g].append(sum(proc_kib(p, "status", "VmRSS:") or 0 for p in pids))
            self.pss[g].append(sum(proc_kib(p, "smaps_rollup", "Pss:") or 0 for p in pids))

    def _loop(self):
        while not self.stop_ev.wait(1.0):
            self._sample()

    def start(self):
        self.host0 = host_ticks()
        self.ticks0 = {g: {p: st[1] for p in pids if (st := proc_stat(p))}
                       for g, pids in self.groups.items()}
        self.wake0 = {g: {p: wakeups(p) for p in pids} for g, pids in self.groups.items()}
        self.t0 = time.monotonic()
        self._sample()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def stop(self):
        self.stop_ev.set()
        self.thread.join()
        self._sample()
        wall = time.monotonic() - self.t0
        host1 = host_ticks()
        out = {"wall": wall,
               "host_busy": (host1[0] - self.host0[0]) / CLK_TCK / wall * 100.0}
        for g in self.groups:
            ticks, vanished = 0, []
            for pid, t in self.ticks0[g].items():
                st = proc_stat(pid)
                if st is None:
                    vanished.append(pid)
                else:
                    ticks += st[1] - t
            # Threads that ended in the window take their count with them:
            # a floor, exact for a process whose threads all stay.
            now = {p: wakeups(p) for p in self.wake0[g]}
            wake = sum(max(0, now[p][0] - w[0]) for p, w in self.wake0[g].items())
            run_ns = sum(max(0, now[p][1] - w[1]) for p, w in self.wake0[g].items())
            out[g] = {
                "cpu": ticks / CLK_TCK / wall * 100.0,
                "wakeups": wake / wall,
                "cpu_ns": run_ns / 1e9 / wall * 100.0,
                "rss": sum(self.rss[g]) / len(self.rss[g]) / 1024.0,
                "pss": sum(self.pss[g]) / len(self.pss[g]) / 1024.0,
                "nprocs": len(self.ticks0[g]),
                "vanished": vanished,
            }
        return out


# ---------------------------------------------------------------- HTTP

# antenne's API needs a token: the benchmark gives its antenne this one.
API_TOKEN = "bench-" + os.urandom(8).hex()


def http_json(method, url, body=None, timeout=10.0):
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


class CaseError(Exception):
    pass


# ---------------------------------------------------------------- peers

class Peers:
    """The antenne-bench process: publisher + sink, driven by JSON lines."""

    def __init__(self, binary, tmp, clip, cert, key):
        self.log = os.path.join(tmp, "antenne-bench.log")
        self.proc = PROCS.spawn(
            "antenne-bench",
            [binary, "--clip", clip, "--listen", "127.0.0.1:0",
             "--tls-listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key],
            self.log, pipes=True)
        self.lines = queue.Queue()
        self.seq = 0
        threading.Thread(target=self._reader, daemon=True).start()
        ready = self._next(30)
        if ready.get("event") != "ready":
            raise RuntimeError(f"antenne-bench did not start: {ready}\n{tail(self.log)}")
        self.port = ready["port"]
        self.tls_port = ready["tls_port"]
        self.clip = ready["clip"]

    def _reader(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _next(self, timeout):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"antenne-bench: no answer in {timeout:.0f} s")
        if line is None:
            raise RuntimeError(f"antenne-bench exited:\n{tail(self.log)}")
        return json.loads(line)

    def cmd(self, timeout=30, **c):
        """Sends one command, returns its answer. Answers to earlier
        commands that timed out are skipped (matched by seq)."""
        self.seq += 1
        c["seq"] = self.seq
        try:
            self.proc.stdin.write((json.dumps(c) + "\n").encode())
            self.proc.stdin.flush()
        except OSError as e:
            raise RuntimeError(f"antenne-bench: cannot send a command ({e}):\n{tail(self.log)}")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._next(max(0.1, deadline - time.monotonic()))
            if answer.get("seq") == self.seq:
                return answer

    def alive(self):
        return self.proc.poll() is None


# ---------------------------------------------------------------- nginx, stunnel

class Nginx:
    """An nginx-rtmp instance in its own temp prefix, `daemon off`, one
    worker, with an http `rtmp_stat` endpoint (polled only outside
    measurement windows)."""

    def __init__(self, name, root, pushes=(), apps=None):
        self.name = name
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.http_port = free_port()
        # apps: {application: [push URLs]} (many channels); default: one
        # application `live` with `pushes`.
        apps = {"live": list(pushes)} if apps is None else apps
        applications = "".join(
            f"    application {a} {{\n      live on;\n      record off;\n"
            + "".join(f"      push {u};\n" for u in urls) + "    }\n"
            for a, urls in apps.items())
        d = self.dir
        conf = f"""load_module {RTMP_MODULE};
daemon off;
user root;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 10000; }}
rtmp {{
  server {{
    listen 127.0.0.1:{self.port};
    chunk_size 4096;
{applications}  }}
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
            raise CaseError(f"nginx {self.name} did not start:\n{tail(self.log)}\n"
                            f"{tail(self.error_log)}")
        return self

    def pids(self):
        return descendants(self.proc.pid) if self.proc else []

    def publishing(self, stream):
        text = http_text(f"http://127.0.0.1:{self.http_port}/stat")
        if text is None:
            return False
        try:
            root = ET.fromstring(text)
        except ET.ParseError:
            return False
        for s in root.iter("stream"):
            if (s.findtext("name") or "") == stream and s.find("publishing") is not None:
                return True
        return False

    def url(self, stream=None):
        base = f"rtmp://127.0.0.1:{self.port}/live"
        return base if stream is None else f"{base}/{stream}"


class Stunnel:
    """stunnel in client mode (plain in, TLS out), as a user puts it in
    front of nginx-rtmp for an rtmps:// platform: verifies the sink's
    certificate against the test CA."""

    def __init__(self, root, connect_port, ca):
        self.dir = os.path.join(root, "stunnel")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.log = os.path.join(self.dir, "stunnel.log")
        self.conf = os.path.join(self.dir, "stunnel.conf")
        with open(self.conf, "w") as f:
            f.write(f"""foreground = yes
pid =
debug = 4
output = {self.log}
[rtmps-out]
client = yes
accept = 127.0.0.1:{self.port}
connect = 127.0.0.1:{connect_port}
verifyChain = yes
CAfile = {ca}
checkHost = localhost
""")
        self.proc = None

    def start(self):
        prog = shutil.which("stunnel4") or shutil.which("stunnel")
        self.proc = PROCS.spawn("stunnel", [prog, self.conf],
                                os.path.join(self.dir, "stunnel.out.log"), cwd=self.dir)
        ok = wait_until(10, lambda: self.proc.poll() is not None or port_accepts(self.port))
        if self.proc.poll() is not None or not ok:
            raise CaseError(f"stunnel did not start:\n{tail(self.log)}")
        return self

    def pids(self):
        return descendants(self.proc.pid) if self.proc else []


def make_pki(d):
    """A test CA and a server certificate for localhost / 127.0.0.1."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    openssl("req", "-x509", *ec, "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "30", "-subj", "/CN=antenne bench CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", *ec, "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "30", "-extfile", "server.ext")
    return [os.path.join(d, x) for x in ("ca.pem", "server.pem", "server.key")]


# ---------------------------------------------------------------- stream

def clip_path(seconds, kbps):
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
    return os.path.join(target, "antenne-bench", f"clip-720p30-{kbps}k-{seconds}s.flv")


def pre_encode(path, seconds, kbps):
    """Encodes the clip once (kept under target/antenne-bench/ for later
    runs)."""
    if os.path.isfile(path) and os.path.getsize(path) > 0:
        log(f"using the clip made earlier: {path}")
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    log(f"pre-encoding {seconds} s of 1280x720p30 H.264 {kbps}k + AAC 160k ...")
    # testsrc2 with temporal noise: hard enough to compress that x264 really
    # spends the bit rate instead of undershooting on a synthetic pattern.
    tmp = path + ".part"
    args = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
        "-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.2:sample_rate=48000",
        "-t", str(seconds),
        "-vf", "noise=alls=14:allf=t,format=yuv420p",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{2 * kbps}k",
        "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "160k", "-ac", "2", "-ar", "48000",
        "-f", "flv", tmp,
    ]
    t0 = time.monotonic()
    subprocess.run(args, check=True)
    os.replace(tmp, path)
    log(f"pre-encoded in {time.monotonic() - t0:.0f} s")
    return path


# ---------------------------------------------------------------- antenne

class AntenneRelay:
    def __init__(self, binary, case_dir, extra_ca=None, threads=1, ingest_keys=("bench",)):
        self.binary = binary
        self.dir = case_dir
        self.port = free_port()
        self.http = free_port()
        self.log = os.path.join(case_dir, "antenne.log")
        self.api = f"http://127.0.0.1:{self.http}/api/v1"
        self.extra_ca = extra_ca
        self.threads = threads
        self.ingest_keys = ingest_keys
        self.proc = None

    def start(self):
        env = dict(os.environ, ANTENNE_LOG="warn", ANTENNE_API_TOKEN=API_TOKEN)
        args = [self.binary, "--rtmp-listen", f"127.0.0.1:{self.port}",
                "--http-listen", f"127.0.0.1:{self.http}",
                "--data-dir", os.path.join(self.dir, "data"),
                "--ingest-key", ",".join(self.ingest_keys),
                "--worker-threads", str(self.threads),
                # SRT on, as by default, on a port of its own; its listener
                # sleeps after 1 s without an SRT publisher (30 s by
                # default), before the measurement window opens.
                "--srt-listen", f"127.0.0.1:{free_port()}",
                "--srt-idle-secs", "1"]
        if self.extra_ca:
            args += ["--extra-ca-file", self.extra_ca]
        self.proc = PROCS.spawn("antenne", args, self.log, env=env)
        ok = wait_until(15, lambda: self.proc.poll() is not None
                        or http_json("GET", f"{self.api}/health")[0] == 200)
        if self.proc.poll() is not None or not ok:
            raise CaseError(f"antenne did not become healthy; log tail:\n{tail(self.log)}")

    def ingest_live(self):
        code, body = http_json("GET", f"{self.api}/ingest")
        if code != 200 or not isinstance(body, dict):
            return None
        return any(i.get("live") for i in body.get("ingests", []))

    def add(self, name, url, key, enabled=True):
        code, body = http_json("POST", f"{self.api}/destinations",
                               {"name": name, "url": url, "key": key, "enabled": enabled})
        if code != 201:
            raise CaseError(f"POST /destinations for {name} answered {code}: {body}\n"
                            f"log tail:\n{tail(self.log)}")
        return body

    def standby_state(self):
        code, body = http_json("GET", f"{self.api}/ingest")
        if code != 200 or not isinstance(body, dict):
            return None
        for i in body.get("ingests", []):
            return (i.get("standby") or {}).get("state")
        return None

    def destinations(self):
        code, body = http_json("GET", f"{self.api}/destinations")
        return body if code == 200 and isinstance(body, list) else []

    def pids(self):
        return [self.proc.pid] if self.proc and self.proc.poll() is None else []


def summarize_dests(dests):
    """States and counters of the measured destinations (not the probe)."""
    dests = [d for d in dests if d.get("name") != "probe"]
    states = {}
    for d in dests:
        s = (d.get("status") or {}).get("state", "?")
        states[s] = states.get(s, 0) + 1
    st = [d.get("status") or {} for d in dests]
    return {
        "states": states,
        "live": states.get("live", 0),
        "dropped": sum(int(s.get("dropped_frames") or 0) for s in st),
        "reconnects": sum(int(s.get("reconnects") or 0) for s in st),
        "errors": sorted({str(s.get("last_error")) for s in st if s.get("last_error")})[:3],
    }


# ---------------------------------------------------------------- one case

def run_case(design, n, ctx):
    """Start the relay (+ N destinations) and have the publisher publish to
    it; measure; stop. Returns a result dict ('error' set when something
    went wrong)."""
    tag = f"{TAGS[design]}{n}_"
    names = [f"{tag}s{k}" for k in range(1, n + 1)]
    case_dir = os.path.join(ctx.tmp, f"{design}-{n}")
    os.makedirs(case_dir, exist_ok=True)
    peers = ctx.peers
    tls = design in TLS_DESIGNS
    res = {"design": design, "n": n, "notes": [], "log": None}
    started = []
    t_case = time.monotonic()
    relay = None
    stunnel = None
    try:
        if design.startswith("antenne"):
            relay = AntenneRelay(ctx.antenne_bin, case_dir,
                                 extra_ca=ctx.ca if tls else None, threads=ctx.antenne_threads)
            res["log"] = relay.log
            relay.start()
            started.append(relay.proc)
            r = peers.cmd(cmd="publish", url=f"rtmp://127.0.0.1:{relay.port}/live/bench")
            if not r.get("ok"):
                raise CaseError(f"publisher: {r.get('error')}\nantenne log:\n{tail(relay.log)}")
            if not wait_until(10, relay.ingest_live, interval=0.2):
                raise CaseError(f"ingest never went live; antenne log tail:\n{tail(relay.log)}")
            dest_url = (f"rtmps://127.0.0.1:{peers.tls_port}/live" if tls
                        else f"rtmp://127.0.0.1:{peers.port}/live")
            t_add = time.monotonic()
            for k, name in enumerate(names, 1):
                relay.add(f"r{k}", dest_url, name)
            if n:
                log(f"  added {n} destinations in {time.monotonic() - t_add:.1f} s")
            probe = relay.add("probe", dest_url, f"{tag}probe", enabled=False)
            pids_fn = relay.pids
        else:
            if design == "nginx-push-stunnel":
                stunnel = Stunnel(case_dir, peers.tls_port, ctx.ca).start()
                started.append(stunnel.proc)
                push_base = f"rtmp://127.0.0.1:{stunnel.port}/live"
            else:
                push_base = f"rtmp://127.0.0.1:{peers.port}/live"
            pushes = ([f"{push_base}/{nm}" for nm in names]
                      if design != "ffmpeg-per-dest" else [])
            relay = Nginx(f"nginx-{design}-{n}", case_dir, pushes=pushes)
            res["log"] = relay.error_log
            relay.start()
            started.append(relay.proc)
            r = peers.cmd(cmd="publish", url=relay.url("bench"))
            if not r.get("ok"):
                raise CaseError(f"publisher: {r.get('error')}\nnginx log:\n"
                                f"{tail(relay.error_log)}")
            if not wait_until(10, lambda: relay.publishing("bench"), interval=0.2):
                raise CaseError(f"ingest never went live at nginx; error log:\n"
                                f"{tail(relay.error_log)}")
            ffmpegs = []
            if design == "ffmpeg-per-dest":
                for name in names:
                    p = PROCS.spawn(
                        f"ffmpeg-{name}",
                        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning",
                         "-i", relay.url("bench"), "-c", "copy", "-f", "flv",
                         f"{push_base}/{name}"],
                        os.path.join(case_dir, f"ffmpeg-{name}.log"))
                    ffmpegs.append(p)
                    started.append(p)
                    time.sleep(0.02)

            def pids_fn(relay=relay, ffmpegs=ffmpegs):
                return relay.pids() + [p.pid for p in ffmpegs if p.poll() is None]

        # Wait until every destination receives video, then let things settle.
        if n:
            def receiving():
                st = peers.cmd(cmd="status", prefix=tag + "s")
                return st.get("receiving", 0) >= n, st
            t_wait = time.monotonic()
            ok = wait_until(20 + 0.05 * n, lambda: receiving()[0], interval=0.5)
            st = receiving()[1]
            res["t_all_receiving"] = time.monotonic() - t_wait
            if not ok:
                res["notes"].append(f"only {st.get('receiving', 0)}/{n} streams receiving "
                                    f"at the sink after {res['t_all_receiving']:.0f} s")
                if design.startswith("antenne"):
                    s = summarize_dests(relay.destinations())
                    log(f"antenne: destination states {s['states']}, errors {s['errors']}")
        time.sleep(ctx.settle)
        groups = {"relay": pids_fn()}
        if stunnel:
            groups["stunnel"] = stunnel.pids()
        groups["peers"] = [peers.proc.pid]

        before_api = (summarize_dests(relay.destinations())
                      if design.startswith("antenne") else None)
        meter = Meter(groups)
        peers.cmd(cmd="window_start", prefix=tag + "s")
        meter.start()
        time.sleep(ctx.seconds)
        m = meter.stop()
        win = peers.cmd(cmd="window_end", prefix=tag + "s", drain_ms=ctx.drain_ms,
                        timeout=60)
        res["load"] = loadavg()
        after_api = (summarize_dests(relay.destinations())
                     if design.startswith("antenne") else None)

        # The relay's cost: its processes, plus stunnel for nginx-push-stunnel.
        rel = dict(m["relay"])
        if "stunnel" in m:
            for k in ("cpu", "rss", "pss", "nprocs", "wakeups", "cpu_ns"):
                rel[k] += m["stunnel"][k]
            res["stunnel_cpu"] = m["stunnel"]["cpu"]
            res["stunnel_rss"] = m["stunnel"]["rss"]
        res.update({k: rel[k] for k in ("cpu", "rss", "pss", "nprocs", "wakeups", "cpu_ns")})
        res["host_busy"] = m["host_busy"]
        res["peers_cpu"] = m["peers"]["cpu"]
        res["peers_rss"] = m["peers"]["rss"]
        res["wall"] = m["wall"]
        res["win"] = win
        vanished = m["relay"]["vanished"] + m.get("stunnel", {}).get("vanished", [])
        if vanished:
            res["notes"].append(f"{len(vanished)} relay process(es) exited during the window")
        if design == "ffmpeg-per-dest":
            dead = [p for p in ffmpegs if p.poll() is not None]
            if dead:
                res["notes"].append(f"{len(dead)} ffmpeg exited; e.g. "
                                    f"{tail(dead[0].bench_log, 3)}")
        if design.startswith("antenne"):
            res["api_live"] = after_api["live"]
            res["dropped_total"] = after_api["dropped"]
            res["dropped_window"] = after_api["dropped"] - before_api["dropped"]
            res["reconnects"] = after_api["reconnects"]
            if n and after_api["live"] != n:
                res["notes"].append(f"antenne: only {after_api['live']}/{n} live "
                                    f"({after_api['states']}, errors {after_api['errors']})")
            if after_api["reconnects"]:
                res["notes"].append(f"antenne: {after_api['reconnects']} reconnects")
            # Enable-to-first-keyframe, after the window (it would disturb it).
            if ctx.enable_repeat:
                et = peers.cmd(cmd="enable_test", api=f"127.0.0.1:{relay.http}",
                               token=API_TOKEN, id=probe["id"], stream=f"{tag}probe",
                               repeat=ctx.enable_repeat, timeout_s=10,
                               timeout=30 + 12 * ctx.enable_repeat)
                if et.get("ok"):
                    res["enable"] = et
                    if et.get("errors"):
                        res["notes"].append(f"enable test: {et['errors'][:2]}")
                else:
                    res["notes"].append(f"enable test failed: {et.get('error')}")
        if design.startswith("antenne") and ctx.standby and n:
            measure_standby(res, relay, peers, tag, groups, ctx)
        if (win.get("drained_s") or 0) > 2:
            res["notes"].append(f"late delivery: the sink kept receiving window frames "
                                f"{win['drained_s']:.1f} s after the window")
        pub = win.get("publisher") or {}
        if pub.get("error") or not pub.get("running", False):
            res["notes"].append(f"publisher stopped: {pub.get('error')}")
        if pub.get("late"):
            res["notes"].append(f"publisher: {pub['late']} messages written >50 ms late")
        for p in started:
            if p.poll() is not None:
                res["notes"].append(f"{p.bench_name} exited with {p.returncode}")
        if res["notes"] and res["log"]:
            log(f"{design} N={n}: " + "; ".join(res["notes"]) +
                f"\nrelay log tail ({res['log']}):\n{tail(res['log'], 10)}")
    except (CaseError, RuntimeError) as e:
        res["error"] = str(e)
        log(f"{design} N={n} FAILED: {e}")
    finally:
        if peers.alive():
            try:
                peers.cmd(cmd="unpublish")
            except RuntimeError:
                pass
        PROCS.kill(started)
    win = res.get("win") or {}
    lat = win.get("lat_socket_ms") or {}
    log(f"{design:18s} N={n:4d}: cpu {res.get('cpu', float('nan')):6.1f} %  "
        f"rss {res.get('rss', float('nan')):7.1f} MiB  "
        f"wake-ups {res.get('wakeups', float('nan')):6.0f}/s  "
        f"cpu(schedstat) {res.get('cpu_ns', float('nan')):.2f} %  host {res.get('host_busy', float('nan')):.0f} %  "
        f"sink {win.get('open', 0)}/{n} missing {win.get('video_missing', '?')}  "
        f"hop p50/p99 {fmt(lat.get('p50'), '.2f')}/{fmt(lat.get('p99'), '.2f')} ms  "
        f"peers cpu {res.get('peers_cpu', float('nan')):.0f} %  load {res.get('load', '?')}  "
        f"({time.monotonic() - t_case:.0f} s)")
    return res


def measure_standby(res, relay, peers, tag, groups, ctx):
    """--standby: the publisher stops; how long until antenne plays the
    standby picture, then the relay's CPU while every destination gets it
    (a window as long as the live one), and the frames the sink received."""
    if not wait_until(30, lambda: relay.standby_state() == "live", interval=0.2):
        res["notes"].append(f"standby: loop never ready ({relay.standby_state()})")
        return
    t0 = time.monotonic()
    peers.cmd(cmd="unpublish")
    if not wait_until(15, lambda: relay.standby_state() == "standby", interval=0.02):
        res["notes"].append(f"standby: never started ({relay.standby_state()})")
        return
    res["standby_after_s"] = time.monotonic() - t0
    time.sleep(ctx.settle)
    meter = Meter(groups)
    peers.cmd(cmd="window_start", prefix=tag + "s")
    meter.start()
    time.sleep(ctx.seconds)
    m = meter.stop()
    win = peers.cmd(cmd="window_end", prefix=tag + "s", drain_ms=ctx.drain_ms, timeout=60)
    res["standby_cpu"] = m["relay"]["cpu"]
    res["standby_open"] = win.get("open", 0)
    res["standby_mbps"] = win.get("rx_mbps_mean")
    log(f"  standby: on air {res['standby_after_s']:.2f} s after the publisher stopped "
        f"(wait 1 s); relay cpu {res['standby_cpu']:.1f} % on standby vs "
        f"{res.get('cpu', float('nan')):.1f} % relaying; sink {res['standby_open']} open, "
        f"receiving {fmt(res['standby_mbps'], '.3f')} Mbit/s each")


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


def ref_ratio(results, design, ref, n, key, seconds):
    """design's per-destination value over ref's, or None when ref's is
    within measurement noise: CPU under 2 clock ticks over the window, RSS
    under 0.5 MiB in total."""
    a = per_dest(results, design, n, key)
    b = per_dest(results, ref, n, key)
    if a is None or b is None or not n:
        return None
    floor = (2 * 100.0 / CLK_TCK / seconds if key == "cpu" else 0.5) / n
    return a / b if b >= floor else None


def times(x):
    return fmt(x, ".2f") + ("×" if x is not None else "")


def delivered(r, n):
    w = r.get("win") or {}
    if not n:
        return "—"
    return (f"{w.get('open', 0)}/{n}, {fmt(w.get('rx_mbps_min'), '.2f')} / "
            f"{fmt(w.get('rx_mbps_mean'), '.2f')}")


def drops(r, n):
    w = r.get("win") or {}
    if not n:
        return "—"
    sink = f"{w.get('video_missing', '?')} of {w.get('video_published', 0) * n}"
    if r["design"].startswith("antenne"):
        return f"{r.get('dropped_window', '?')} / {sink}"
    return f"— / {sink}"


def latency(r, n):
    lat = (r.get("win") or {}).get("lat_socket_ms") or {}
    if not n or not lat.get("n"):
        return "—"
    return f"{fmt(lat.get('p50'), '.2f')} / {fmt(lat.get('p99'), '.2f')} / {fmt(lat.get('max'), '.1f')}"


def enable(r):
    e = r.get("enable")
    if not e:
        return "—"
    return f"{fmt(e.get('p50_ms'), '.1f')} / {fmt(e.get('max_ms'), '.1f')}"


def print_tables(results, plan, machine, stream, seconds, skipped):
    out = []
    for title, designs, ref in GROUPS:
        designs = [d for d in designs if d in plan]
        if not designs:
            continue
        out.append(f"### {title}")
        out.append("")
        out.append("| design | N | CPU % (one core) | RSS MiB | CPU %/dest | MiB/dest "
                   f"| CPU/dest vs {ref} | MiB/dest vs {ref} "
                   "| streams at sink, Mbit/s min / mean | dropped: antenne API / sink missing of published "
                   "| hop ms p50 / p99 / max | enable→keyframe ms p50 / max |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for d in designs:
            for n in [0] + plan[d]:
                r = results.get((d, n))
                if not r or "cpu" not in r:
                    err = (r or {}).get("error", "not run").splitlines()[0][:120]
                    out.append(f"| {d} | {n} | failed: {err.replace('|', '/')} "
                               "| | | | | | | | | |")
                    continue
                cpd = per_dest(results, d, n, "cpu")
                mpd = per_dest(results, d, n, "rss")
                rc = ref_ratio(results, d, ref, n, "cpu", seconds)
                rm = ref_ratio(results, d, ref, n, "rss", seconds)
                out.append(
                    f"| {d} | {n if n else '0 (ingest only)'} | {r['cpu']:.1f} | {r['rss']:.1f} "
                    f"| {fmt(cpd, '.3f')} | {fmt(mpd, '.3f')} | {times(rc)} | {times(rm)} "
                    f"| {delivered(r, n)} | {drops(r, n)} | {latency(r, n)} | {enable(r)} |")
            for n in skipped.get(d, []):
                out.append(f"| {d} | {n} | not run: {skipped_reason(d)} | | | | | | | | | |")
        out.append("")
    out.append(machine)
    out.append(stream)
    out.append(f"Per dest = (value at N − value at N=0 with the ingest running) / N, same design. "
               f"CPU resolution: 1 clock tick per {seconds:g} s window = "
               f"{100.0 / CLK_TCK / seconds:.2f} % of one core. nginx-push-stunnel counts "
               f"nginx + stunnel. Ratios are left out (—) where the reference's per-destination "
               f"figure is within noise (CPU: under 2 clock ticks over the window; RSS: under "
               f"0.5 MiB in all). Hop = publisher write → arrival at the sink's socket "
               f"(includes the loopback ingest hop: an upper bound of the relay hop).")
    out.append("")
    out.append("Checks (not part of the comparison). PSS = proportional set size. Host busy = CPU "
               "of the whole machine during the window (% of one core, max 100 × nproc). Peers = "
               "the antenne-bench process (publisher + sink). Relay wake-ups = voluntary context "
               "switches per second over the relay's threads (load-independent, unlike CPU). Load = 1/5/15 min load average "
               "at the end of the window.")
    out.append("")
    out.append("| design | N | relay procs | PSS MiB | relay wake-ups/s | host busy % | peers CPU % "
               "| peers RSS MiB | load | hop read ms p50 / p99 | antenne live | notes |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|")
    for title, designs, _ in GROUPS:
        for d in [x for x in designs if x in plan]:
            for n in [0] + plan[d]:
                r = results.get((d, n)) or {}
                if "cpu" not in r:
                    continue
                w = r.get("win") or {}
                rd = w.get("lat_read_ms") or {}
                hop_read = (f"{fmt(rd.get('p50'), '.2f')} / {fmt(rd.get('p99'), '.2f')}"
                            if n and rd.get("n") else "—")
                alive = f"{r.get('api_live', 0)}/{n}" if d.startswith("antenne") and n else "—"
                notes = "; ".join(r.get("notes", [])).replace("\n", " ").replace("|", "/")
                if d == "nginx-push-stunnel":
                    notes = (f"stunnel {r.get('stunnel_cpu', 0):.1f} % CPU, "
                             f"{r.get('stunnel_rss', 0):.1f} MiB. " + notes)
                out.append(f"| {d} | {n} | {r['nprocs']} | {r['pss']:.1f} "
                           f"| {r.get('wakeups', float('nan')):.0f} | {r['host_busy']:.0f} "
                           f"| {r['peers_cpu']:.0f} | {r['peers_rss']:.0f} | {r.get('load', '?')} "
                           f"| {hop_read} | {alive} | {notes[:300]} |")
    print("\n".join(out), flush=True)


def skipped_reason(design):
    if design == "ffmpeg-per-dest":
        return "one ffmpeg per destination (~55 MiB RSS and ~0.5 % CPU each) does not fit " \
               "this 2-core machine beyond --ffmpeg-max-n"
    return "not asked for"


def targets(results, plan):
    """The goals of issue 5, checked against the largest N each design
    reached. Printed, never failed."""
    rows = []

    def largest(design, pred=lambda r: True):
        ns = [n for n in plan.get(design, []) if "cpu" in results.get((design, n), {})
              and pred(results[(design, n)])]
        return max(ns) if ns else None

    a_n = largest("antenne")
    common = [n for n in plan.get("antenne", []) if n in plan.get("nginx-push", [])
              and "cpu" in results.get(("antenne", n), {})
              and "cpu" in results.get(("nginx-push", n), {})]
    if common:
        n = max(common)
        a = per_dest(results, "antenne", n, "cpu")
        p = per_dest(results, "nginx-push", n, "cpu")
        ok = a is not None and p is not None and p > 0 and a <= p / 2
        trend = ", ".join(
            f"{m}: {times(ratio(per_dest(results, 'antenne', m, 'cpu'), per_dest(results, 'nginx-push', m, 'cpu')))}"
            for m in common if m >= 100)
        rows.append(("CPU/dest ≤ half of nginx push", f"N={n}", ok,
                     f"antenne {fmt(a, '.3f')} %/dest vs nginx-push {fmt(p, '.3f')} %/dest "
                     f"({times(ratio(a, p))} of nginx)" + (f"; antenne/nginx by N: {trend}" if trend else "")))
    else:
        rows.append(("CPU/dest ≤ half of nginx push", "—", None, "antenne and nginx-push not both run"))
    if a_n:
        mpd = per_dest(results, "antenne", a_n, "rss")
        rows.append(("memory/dest < 0.1 MiB beyond one shared GOP", f"N={a_n}",
                     mpd is not None and mpd < 0.1,
                     f"{fmt(mpd, '.3f')} MiB/dest (the GOP is in the N=0 baseline)"))
        r = results[("antenne", a_n)]
        w = r.get("win") or {}
        full = (w.get("open") == a_n and not w.get("video_missing")
                and (w.get("rx_mbps_min") or 0) > 0.9 * (w.get("rx_mbps_mean") or 0))
        rows.append(("1,000 × 6 Mbit/s within one core (antenne < 100 %)",
                     f"N={a_n}", (r["cpu"] < 100 and full) if a_n >= 1000 else None,
                     f"antenne {r['cpu']:.1f} % of one core; {w.get('open', 0)}/{a_n} streams, "
                     f"{w.get('video_missing', '?')} video frames missing, "
                     f"{fmt(w.get('rx_mbps_mean'), '.2f')} Mbit/s per stream"
                     + ("" if a_n >= 1000 else " (not judged: N=1000 not run)")))
        lat = w.get("lat_socket_ms") or {}
        p99 = lat.get("p99")
        rows.append(("hop p99 < 5 ms", f"N={a_n}", p99 is not None and p99 < 5,
                     f"p99 {fmt(p99, '.2f')} ms (p50 {fmt(lat.get('p50'), '.2f')}, "
                     f"max {fmt(lat.get('max'), '.1f')}); by N: " + ", ".join(
                         f"{n}: {fmt(((results.get(('antenne', n)) or {}).get('win') or {}).get('lat_socket_ms', {}).get('p99'), '.2f')}"
                         for n in plan["antenne"])))
        e = r.get("enable") or {}
        rows.append(("enable-to-first-keyframe < 50 ms", f"N={a_n}",
                     e.get("p50_ms") is not None and e["p50_ms"] < 50,
                     f"p50 {fmt(e.get('p50_ms'), '.1f')} ms, max {fmt(e.get('max_ms'), '.1f')} ms "
                     f"over {len(e.get('samples_ms', []))} enables"))
    out = ["| target | at | result | figure |", "|---|---|---|---|"]
    for name, at, ok, fig in rows:
        verdict = "—" if ok is None else ("PASS" if ok else "MISS")
        out.append(f"| {name} | {at} | {verdict} | {fig} |")
    print("\n### Targets (printed, not enforced)\n", flush=True)
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


def uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return f"load average: {loadavg()}"


# ---------------------------------------------------------------- main

class Ctx:
    pass


def parse_ns(text, flag, ap):
    try:
        ns = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        ap.error(f"{flag}: comma-separated integers expected")
    if any(n < 1 for n in ns):
        ap.error(f"{flag} values must be >= 1")
    return ns


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", default=None,
                    help="destination counts for antenne and nginx-push "
                         "(default 1,10,100,500,1000; --quick 1,10,100)")
    ap.add_argument("--tls-n", default=None,
                    help="destination counts for the RTMPS designs "
                         "(default 1,10,100,500; --quick 1,10)")
    ap.add_argument("--ffmpeg-max-n", type=int, default=100,
                    help="largest N for ffmpeg-per-dest (default 100)")
    ap.add_argument("--seconds", type=float, default=None,
                    help="measurement window per run (default 15; --quick 5)")
    ap.add_argument("--designs", default=",".join(DESIGNS),
                    help=f"comma-separated subset of {','.join(DESIGNS)}")
    ap.add_argument("--settle", type=float, default=None,
                    help="seconds to wait after all destinations receive (default 4; --quick 2)")
    ap.add_argument("--enable-repeat", type=int, default=None,
                    help="enable-to-first-keyframe repetitions per antenne run "
                         "(default 20; --quick 5; 0 = skip)")
    ap.add_argument("--clip-seconds", type=int, default=30,
                    help="length of the pre-encoded (looped) clip (default 30)")
    ap.add_argument("--kbps", type=int, default=5800,
                    help="video bit rate of the clip (default 5800; + 160k audio)")
    ap.add_argument("--antenne-threads", type=int, default=1,
                    help="antenne --worker-threads (default 1, antenne's default)")
    ap.add_argument("--antenne-bin", default=None,
                    help="antenne binary to measure (default target/release/antenne): "
                         "compare two builds with --no-build")
    ap.add_argument("--channels", type=int, default=None, metavar="K",
                    help="many-channels mode instead of the N sweep: K ingest keys, each "
                         "with its own publisher and --channel-dests destinations (try 10; 100)")
    ap.add_argument("--channel-dests", type=int, default=3,
                    help="destinations per channel in --channels mode (default 3)")
    ap.add_argument("--channel-designs", default="antenne,nginx-push",
                    help="--channels mode: antenne, nginx-push or both (default both)")
    ap.add_argument("--quick", action="store_true",
                    help="small N, short windows: a few minutes")
    ap.add_argument("--no-build", action="store_true",
                    help="do not run cargo build (use the existing binaries)")
    ap.add_argument("--standby", action="store_true",
                    help="antenne designs: after the live window, stop the publisher and "
                         "measure the standby (time to start, CPU while every destination "
                         "gets the standby picture)")
    ap.add_argument("--json", metavar="FILE",
                    help="also write the raw results of every run to FILE")
    ap.add_argument("--keep-tmp", action="store_true",
                    help="keep the temp dir (logs, configs) after the run")
    a = ap.parse_args()

    q = a.quick
    ns = parse_ns(a.n or ("1,10,100" if q else "1,10,100,500,1000"), "--n", ap)
    tls_ns = parse_ns(a.tls_n or ("1,10" if q else "1,10,100,500"), "--tls-n", ap)
    a.seconds = a.seconds if a.seconds is not None else (5.0 if q else 15.0)
    a.settle = a.settle if a.settle is not None else (2.0 if q else 4.0)
    enable_repeat = a.enable_repeat if a.enable_repeat is not None else (5 if q else 20)
    designs = [d.strip() for d in a.designs.split(",") if d.strip()]
    for d in designs:
        if d not in DESIGNS:
            ap.error(f"unknown design {d!r} (known: {', '.join(DESIGNS)})")
    plan, skipped = {}, {}
    for d in designs:
        want = tls_ns if d in TLS_DESIGNS else ns
        if d == "ffmpeg-per-dest":
            plan[d] = [n for n in want if n <= a.ffmpeg_max_n]
            skipped[d] = [n for n in want if n > a.ffmpeg_max_n]
        else:
            plan[d] = want
    progs = ["ffmpeg", "ffprobe", "openssl"]
    if any(d != "antenne" and d != "antenne-rtmps" for d in designs):
        progs.append("nginx")
    if "nginx-push-stunnel" in designs and not (shutil.which("stunnel4") or shutil.which("stunnel")):
        sys.exit("stunnel4 not found in PATH")
    for prog in progs:
        if not shutil.which(prog):
            sys.exit(f"{prog} not found in PATH")
    if "nginx" in progs and not os.path.isfile(RTMP_MODULE):
        sys.exit(f"{RTMP_MODULE} missing (Debian package libnginx-mod-rtmp)")

    # 1,000 destinations: a socket each in the relay, the sink, stunnel.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want_fds = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < want_fds:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want_fds, hard))
    fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if fds < 3 * max(ns + tls_ns) + 100:
        log(f"warning: open file limit {fds} may be too low for N={max(ns + tls_ns)}")

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    atexit.register(PROCS.kill_all)

    t_start = time.monotonic()
    load_start = uptime()
    ctx = Ctx()
    ctx.seconds, ctx.settle, ctx.enable_repeat = a.seconds, a.settle, enable_repeat
    ctx.drain_ms = 1000
    ctx.antenne_threads = a.antenne_threads
    ctx.standby = a.standby
    ctx.tmp = tempfile.mkdtemp(prefix="antenne-bench-")
    log(f"temp dir {ctx.tmp}; {load_start}")
    ok = False
    try:
        target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
        ctx.antenne_bin = a.antenne_bin or os.path.join(target, "release", "antenne")
        bench_bin = os.path.join(target, "release", "antenne-bench")
        if not a.no_build:
            log("cargo build --release -p antenne -p antenne-bench ...")
            r = subprocess.run(["cargo", "build", "--release", "-p", "antenne",
                                "-p", "antenne-bench"],
                               cwd=REPO, stdout=sys.stderr, stderr=sys.stderr)
            if r.returncode != 0:
                sys.exit("cargo build failed")
        for b in (ctx.antenne_bin, bench_bin):
            if not os.access(b, os.X_OK):
                sys.exit(f"{b} missing (build it, or drop --no-build)")

        clip = pre_encode(clip_path(a.clip_seconds, a.kbps), a.clip_seconds, a.kbps)
        ctx.ca, cert, key = make_pki(ctx.tmp)
        ctx.peers = Peers(bench_bin, ctx.tmp, clip, cert, key)
        c = ctx.peers.clip
        stream = (f"Stream: pre-encoded {c['duration_ms'] / 1000:.1f} s FLV looped in real time "
                  f"by antenne-bench, 1280x720 30 fps H.264 (x264 veryfast, testsrc2+noise, "
                  f"GOP 2 s, {a.kbps} kbit/s) + AAC 160 kbit/s = {c['mbps']:.2f} Mbit/s of "
                  f"media; {c['matchable']} of {c['video_frames']} video frames matchable "
                  f"by content.")
        log(stream)
        log(f"sink on 127.0.0.1:{ctx.peers.port} (RTMP) and :{ctx.peers.tls_port} (RTMPS)")

        if a.channels:
            import channels  # bench/channels.py, beside this script
            ctx.clip = clip
            ctx.channel_designs = [x.strip() for x in a.channel_designs.split(",") if x.strip()]
            res = channels.run(sys.modules[__name__], ctx, a.channels, a.channel_dests)
            if a.json:
                with open(a.json, "w") as f:
                    json.dump({"machine": machine_line(), "results": list(res.values())},
                              f, indent=1)
            print(f"\n{machine_line()}\nRun time: {time.monotonic() - t_start:.0f} s.\n"
                  f"Load at start: {load_start}\nLoad at end:   {uptime()}", flush=True)
            ok = True
            return
        results = {}
        try:
            for d in designs:
                for n in [0] + plan[d]:
                    results[(d, n)] = run_case(d, n, ctx)
                    if not ctx.peers.alive():
                        raise RuntimeError(f"antenne-bench died:\n{tail(ctx.peers.log)}")
        except RuntimeError as e:
            # Print what was measured before the peers died.
            log(f"stopping the run: {e}")
        load_end = uptime()
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"machine": machine_line(), "stream": stream, "load_start": load_start,
                           "load_end": load_end, "seconds": a.seconds, "plan": plan,
                           "results": [r for r in results.values()]}, f, indent=1)

        print_tables(results, plan, machine_line(), stream, a.seconds, skipped)
        targets(results, plan)
        print(f"\nRun time: {time.monotonic() - t_start:.0f} s (window {a.seconds:g} s, "
              f"settle {a.settle:g} s per run, {enable_repeat} enables per antenne run).\n"
              f"Load at start: {load_start}\nLoad at end:   {load_end}", flush=True)
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
