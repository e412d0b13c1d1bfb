#!/usr/bin/env python3
"""Soak run: does antenne hold up, and give back what it took, after hours of
destinations coming and going and receivers dying under it?

One ffmpeg publisher streams a small looped clip to antenne. antenne relays
it to --destinations destinations spread over --receivers nginx-rtmp
receivers owned by the script. Every --interval seconds the script does one
random action through the REST API (toggle, add, delete or edit a
destination) or kills a receiver and restarts it a few seconds later on the
same port. At the end it stops the actions, waits for everything to settle
and checks that:

  1. every enabled destination is `live` (and publishing at its receiver),
     every disabled one is `disabled`, no receiver holds a stream nobody
     should be sending;
  2. once the set is back to --destinations enabled destinations (the
     baseline shape of the start), antenne's live tasks and open fds are
     back to their starting level and RSS is within a tolerance.

Not part of CI. Python 3 stdlib only. See bench/SOAK.md.

    python3 bench/soak.py [--duration 1h] [--destinations 50] [--receivers 5]
                          [--interval 3] [--seed N] [--no-build] [--keep-tmp]

Progress goes to stderr; the summary goes to stdout. Exit status: 0 PASS,
1 FAIL, 2 the run could not be set up, 130 interrupted.
"""

import argparse
import atexit
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1024.0
INGEST_KEY = "soak"
ENABLED_SHARE = 0.8  # toggles keep about this share of destinations enabled
BASE_SAMPLES = 7  # samples, 1 s apart, behind the start and end figures
T0 = time.monotonic()


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class SetupError(Exception):
    """The run could not be set up (not a finding about antenne)."""


# ---------------------------------------------------------------- processes
# (Procs, tail, port_accepts, wait_until: same as bench/relay_bench.py)

class Procs:
    """Every child is started in its own session (process group = its pid),
    so that killing the group also stops what it forked."""

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

    def kill(self, procs, grace=3.0, sig=signal.SIGTERM):
        procs = [p for p in procs if p in self.procs]
        if sig != signal.SIGKILL:
            for p in procs:
                self._signal(p, sig)
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


_PORT_RNG = random.SystemRandom()


def free_port(taken=()):
    """A free 127.0.0.1 TCP port below the kernel's ephemeral range, so that
    while a killed receiver is down no outgoing connection (antenne's to the
    other receivers, say) can pick its port as a local port and keep it from
    restarting on that same port."""
    lo = 20000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_lo = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        eph_lo = 32768
    hi = max(lo + 1000, eph_lo - 1)
    for _ in range(500):
        port = _PORT_RNG.randrange(lo, hi)
        if port in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise SetupError("no free port found")


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


def parse_duration(text):
    """'1h', '10m', '90s', '1h30m', '45' (seconds) -> seconds."""
    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", t)
    if not t or not m or not any(m.groups()):
        raise argparse.ArgumentTypeError(f"bad duration {text!r} (e.g. 1h, 10m, 90s, 1h30m)")
    h, mi, s = (int(x or 0) for x in m.groups())
    return float(h * 3600 + mi * 60 + s)


def fmt_dur(s):
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


# ---------------------------------------------------------------- /proc

def proc_status(pid):
    """{'rss_kib', 'threads'} from /proc/<pid>/status, or None."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    out["rss_kib"] = int(line.split()[1])
                elif line.startswith("Threads:"):
                    out["threads"] = int(line.split()[1])
    except OSError:
        return None
    return out


def proc_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def proc_fd_kinds(pid):
    """{'socket': n, 'file': n, 'pipe': n, 'anon_inode:[eventfd]': n, ...}:
    what the open fds are, to say which kind leaked."""
    kinds = {}
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return kinds
    for n in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{n}")
        except OSError:
            continue
        if target.startswith("socket:"):
            k = "socket"
        elif target.startswith("pipe:"):
            k = "pipe"
        elif target.startswith("anon_inode:"):
            k = target
        elif target.startswith("/"):
            k = "file"
        else:
            k = target.split(":")[0]
        kinds[k] = kinds.get(k, 0) + 1
    return kinds


# ---------------------------------------------------------------- HTTP

API_TOKEN = "soak-" + os.urandom(8).hex()


def http_json(method, url, body=None, timeout=15.0):
    """(status, parsed body); (None, reason) when no answer came."""
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
    except (urllib.error.URLError, OSError, ValueError) as e:
        return None, str(e)


def http_text(url, timeout=5.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError):
        return None


# ---------------------------------------------------------------- receivers

class Receiver:
    """An nginx-rtmp receiver (one process, `daemon off`, master off) in its
    own temp prefix, with an http `rtmp_stat` endpoint. It keeps its ports
    across kill/restart."""

    def __init__(self, index, root, taken):
        self.index = index
        self.name = f"rx{index}"
        self.dir = os.path.join(root, self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port(taken)
        taken.add(self.port)
        self.http_port = free_port(taken)
        taken.add(self.http_port)
        d = self.dir
        conf = f"""load_module {RTMP_MODULE};
daemon off;
user root;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log error;
events {{ worker_connections 4096; }}
rtmp {{
  server {{
    listen 127.0.0.1:{self.port};
    chunk_size 4096;
    application live {{
      live on;
      record off;
    }}
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
        self.kills = 0
        self.restart_at = None  # monotonic time of the planned restart
        self.thaw_at = None     # set while frozen (SIGSTOP): time of the SIGCONT

    @property
    def up(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=30.0):
        """Starts nginx; retries while the ports are still held (a killed
        process's sockets can take a moment to go)."""
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            attempt += 1
            self.proc = PROCS.spawn(
                self.name,
                ["nginx", "-p", self.dir + "/", "-c", self.conf, "-e", self.error_log],
                self.log, cwd=self.dir)
            ok = wait_until(10, lambda: self.proc.poll() is not None
                            or (port_accepts(self.port) and port_accepts(self.http_port)))
            if self.proc.poll() is None and ok:
                return self
            PROCS.kill([self.proc], grace=1.0)
            self.proc = None
            if time.monotonic() >= deadline:
                raise SetupError(f"receiver {self.name} (port {self.port}) did not start "
                                 f"after {attempt} attempts:\n{tail(self.log, 5)}\n"
                                 f"{tail(self.error_log, 5)}")
            time.sleep(1.0)

    def kill(self):
        """SIGKILL: the receiver dies abruptly, as a crashed server would."""
        if self.proc:
            PROCS.kill([self.proc], sig=signal.SIGKILL)
            self.proc = None
            self.kills += 1

    def freeze(self):
        """SIGSTOP: the receiver hangs. Its sockets stay open and the kernel
        still accepts connections, but nothing reads or answers: what a
        stuck server looks like. Tests the stall and connect timeouts."""
        if self.proc:
            os.killpg(self.proc.pid, signal.SIGSTOP)

    def thaw(self):
        if self.proc:
            os.killpg(self.proc.pid, signal.SIGCONT)
        self.thaw_at = None

    def stop(self):
        if self.proc:
            PROCS.kill([self.proc])
            self.proc = None

    def streams(self):
        """{stream name: bytes_in} of the streams being published to
        application `live`; None when the stat page cannot be read."""
        if not self.up:
            return {}
        text = http_text(f"http://127.0.0.1:{self.http_port}/stat")
        if text is None:
            return None
        try:
            root = ET.fromstring(text)
        except ET.ParseError:
            return None
        out = {}
        for app in root.iter("application"):
            if (app.findtext("name") or "") != "live":
                continue
            for s in app.iter("stream"):
                if s.find("publishing") is not None:
                    out[s.findtext("name") or ""] = int(s.findtext("bytes_in") or 0)
        return out

    def url(self):
        return f"rtmp://127.0.0.1:{self.port}/live"


# ---------------------------------------------------------------- antenne

class Antenne:
    def __init__(self, binary, root, stall, grace):
        self.binary = binary
        self.dir = os.path.join(root, "antenne")
        os.makedirs(self.dir, exist_ok=True)
        taken = set()
        self.port = free_port(taken)
        taken.add(self.port)
        self.http = free_port(taken)
        self.log = os.path.join(self.dir, "antenne.log")
        self.api = f"http://127.0.0.1:{self.http}/api/v1"
        self.stall, self.grace = stall, grace
        self.proc = None

    def start(self):
        env = dict(os.environ, ANTENNE_LOG=os.environ.get("ANTENNE_LOG", "info"),
                   ANTENNE_API_TOKEN=API_TOKEN,
                   ANTENNE_ADMIN_PASSWORD="soak-" + os.urandom(8).hex())
        self.proc = PROCS.spawn(
            "antenne",
            [self.binary, "--rtmp-listen", f"127.0.0.1:{self.port}",
             "--http-listen", f"127.0.0.1:{self.http}",
             "--data-dir", os.path.join(self.dir, "data"),
             "--ingest-key", INGEST_KEY,
             "--stall-timeout-secs", str(self.stall),
             "--grace-period-secs", str(self.grace)], self.log, env=env)
        ok = wait_until(30, lambda: self.proc.poll() is not None
                        or http_json("GET", f"{self.api}/health")[0] == 200, interval=0.5)
        if self.proc.poll() is not None or not ok:
            raise SetupError(f"antenne did not become healthy; log tail:\n{tail(self.log)}")

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def ingest_live(self):
        code, body = http_json("GET", f"{self.api}/ingest")
        if code != 200 or not isinstance(body, dict):
            return False
        return any(i.get("live") for i in body.get("ingests", []))

    def destinations(self):
        """The list with keys revealed, or None when the API did not answer."""
        code, body = http_json("GET", f"{self.api}/destinations?reveal=keys")
        return body if code == 200 and isinstance(body, list) else None

    def runtime(self):
        code, body = http_json("GET", f"{self.api}/runtime")
        return body if code == 200 and isinstance(body, dict) else None


# ---------------------------------------------------------------- the clip

def pre_encode(tmp, seconds):
    """A small clip (640x360p30 ~0.8 Mbit/s H.264 + AAC): the soak is about
    antenne's bookkeeping, not bandwidth, and the machine is small."""
    path = os.path.join(tmp, "clip.flv")
    args = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds),
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        "-b:v", "800k", "-maxrate", "800k", "-bufsize", "1600k",
        "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "96k", "-ac", "2", "-ar", "48000",
        "-f", "flv", path,
    ]
    t = time.monotonic()
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise SetupError(f"pre-encoding the clip failed: {r.stderr[-2000:]}")
    log(f"pre-encoded a {seconds} s 640x360p30 clip in {time.monotonic() - t:.0f} s")
    return path


# ---------------------------------------------------------------- the soak

ACTIONS = ("toggle", "add/delete", "edit", "kill")
WEIGHTS = (30, 25, 30, 15)


class Soak:
    def __init__(self, a, tmp, binary):
        self.a = a
        self.tmp = tmp
        self.rng = random.Random(a.seed)
        self.antenne = Antenne(binary, tmp, a.stall_timeout, a.grace_period)
        self.receivers = []
        self.publisher = None
        self.publisher_restarts = 0
        self.clip = None
        # The script's view of the destinations: name -> {id, rx, key,
        # enabled, initial}. Names are soak-<serial>; actions pick by name
        # order, so one seed replays one sequence of actions.
        self.model = {}
        self.serial = 0
        self.counts = {k: 0 for k in ("toggle_on", "toggle_off", "add", "delete",
                                      "edit_key", "edit_url", "edit_url_key", "edit_name",
                                      "kill", "restart", "freeze")}
        self.api_errors = []    # unexpected HTTP answers (a finding)
        self.api_timeouts = []  # no answer in time (reported)
        self.samples_path = os.path.join(tmp, "samples.csv")
        self.samples = []
        self.max_rss = 0
        self.notes = []

    # -- helpers

    def api(self, method, path, body=None):
        return http_json(method, f"{self.antenne.api}{path}", body)

    def next_serial(self):
        self.serial += 1
        return self.serial

    def alive_or_raise(self):
        if not self.antenne.alive:
            raise AntenneDied(f"antenne exited with {self.antenne.proc.returncode}; log tail:\n"
                              f"{tail(self.antenne.log, 40)}")

    def start_publisher(self):
        self.publisher = PROCS.spawn(
            "publisher",
            ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning",
             "-re", "-stream_loop", "-1", "-i", self.clip, "-c", "copy", "-f", "flv",
             f"rtmp://127.0.0.1:{self.antenne.port}/live/{INGEST_KEY}"],
            os.path.join(self.tmp, "publisher.log"))

    def check_publisher(self):
        if self.publisher and self.publisher.poll() is not None:
            self.publisher_restarts += 1
            msg = (f"publisher exited with {self.publisher.returncode} "
                   f"({tail(self.publisher.bench_log, 3)!r}); restarted it")
            log(msg)
            self.notes.append(f"{fmt_dur(time.monotonic() - T0)}: {msg}")
            PROCS.kill([self.publisher])
            self.start_publisher()

    def sorted_names(self, pred=lambda d: True):
        return sorted((n for n, d in self.model.items() if pred(d)),
                      key=lambda n: int(n.split("-")[1]))

    def record_api(self, what, code, body, ok_codes):
        if code in ok_codes:
            return True
        if code is None:
            self.api_timeouts.append(f"{fmt_dur(time.monotonic() - T0)} {what}: {body}")
            log(f"API gave no answer to {what}: {body}")
        else:
            self.api_errors.append(f"{fmt_dur(time.monotonic() - T0)} {what}: {code} {body}")
            log(f"API answered {code} to {what}: {body}")
        return False

    def resync(self):
        """After an API call without an answer: take what antenne has."""
        lst = wait_until(30, self.antenne.destinations, interval=1.0)
        if lst is None:
            self.alive_or_raise()
            raise AntenneDied("the API stopped answering GET /destinations for 30 s")
        by_port = {r.port: r.index for r in self.receivers}
        new = {}
        for d in lst:
            m = re.match(r"rtmp://127\.0\.0\.1:(\d+)/live$", d["url"])
            old = self.model.get(d["name"], {})
            new[d["name"]] = {"id": d["id"], "rx": by_port.get(int(m.group(1))) if m else None,
                              "key": d["key"], "enabled": d["enabled"],
                              "initial": old.get("initial", False)}
        self.model = new

    # -- actions

    def add(self, enabled=True, rx=None, initial=False):
        s = self.next_serial()
        name = f"soak-{s}"
        rx = self.rng.randrange(len(self.receivers)) if rx is None else rx
        key = f"k{s}"
        code, body = self.api("POST", "/destinations",
                              {"name": name, "url": self.receivers[rx].url(), "key": key,
                               "enabled": enabled})
        if self.record_api(f"POST {name}", code, body, (201,)):
            self.model[name] = {"id": body["id"], "rx": rx, "key": key, "enabled": enabled,
                                "initial": initial}
        elif code is None:
            self.resync()
        return name

    def delete(self, name):
        d = self.model[name]
        code, body = self.api("DELETE", f"/destinations/{d['id']}")
        if self.record_api(f"DELETE {name}", code, body, (200, 204)):
            del self.model[name]
        elif code is None:
            self.resync()

    def patch(self, name, change, what):
        d = self.model[name]
        code, body = self.api("PATCH", f"/destinations/{d['id']}", change)
        if self.record_api(f"PATCH {name} {what}", code, body, (200,)):
            if "enabled" in change:
                d["enabled"] = change["enabled"]
            if "key" in change:
                d["key"] = change["key"]
            if "url" in change:
                d["rx"] = next(r.index for r in self.receivers if r.url() == change["url"])
        elif code is None:
            self.resync()

    def act(self):
        """One random action. The kind is drawn first; one that cannot be
        done now (nothing to toggle, enough receivers down) becomes a
        toggle, so the random stream stays the same."""
        rng = self.rng
        kind = rng.choices(ACTIONS, WEIGHTS)[0]
        n, target = len(self.model), self.a.destinations
        down = [r for r in self.receivers if not r.up or r.thaw_at is not None]
        if kind == "kill" and (len(down) >= max(1, len(self.receivers) // 2)
                               or len(self.receivers) < 2):
            kind = "toggle"
        if kind in ("toggle", "edit") and n == 0:
            kind = "add/delete"
        if kind == "toggle":
            # Off or on first, then which one: a plain random pick would
            # drift to half of them disabled; this keeps about 80 % on.
            enabled = self.sorted_names(lambda d: d["enabled"])
            disabled = self.sorted_names(lambda d: not d["enabled"])
            p_off = min(0.9, max(0.1, 0.5 + 2.5 * (len(enabled) / n - ENABLED_SHARE)))
            off = rng.random() < p_off
            pool = (enabled if off else disabled) or (disabled if off else enabled)
            name = rng.choice(pool)
            on = not self.model[name]["enabled"]
            self.patch(name, {"enabled": on}, "enabled" if on else "disabled")
            self.counts["toggle_on" if on else "toggle_off"] += 1
            return f"{name} {'on' if on else 'off'}"
        if kind == "add/delete":
            # Keep the count around the target: the further below, the
            # likelier an add.
            p_add = min(0.95, max(0.05, 0.5 + 0.5 * (target - n) / max(1.0, 0.1 * target)))
            if n <= 1 or rng.random() < p_add:
                name = self.add(enabled=rng.random() < 0.85)
                self.counts["add"] += 1
                return f"add {name}"
            name = rng.choice(self.sorted_names())
            self.delete(name)
            self.counts["delete"] += 1
            return f"delete {name}"
        if kind == "edit":
            name = rng.choice(self.sorted_names())
            d = self.model[name]
            sub = rng.choices(("key", "url", "url_key", "name"), (40, 30, 15, 15))[0]
            change = {}
            if sub in ("key", "url_key"):
                change["key"] = f"k{self.next_serial()}"
            if sub in ("url", "url_key"):
                others = [r for r in self.receivers if r.index != d["rx"]] or self.receivers
                change["url"] = rng.choice(others).url()
            if sub == "name":
                change["name"] = name  # same name: an edit that must not reconnect
            self.patch(name, change, f"edit {sub}")
            self.counts[f"edit_{sub}"] += 1
            return f"edit {sub} {name}"
        # kill (or, with --freeze, half of the time: freeze)
        rx = rng.choice([r for r in self.receivers if r.up and r.thaw_at is None])
        if self.a.freeze and rng.random() < 0.5:
            delay = rng.uniform(5.0, 25.0)
            rx.freeze()
            rx.thaw_at = time.monotonic() + delay
            self.counts["freeze"] += 1
            return f"freeze {rx.name} (SIGCONT in {delay:.0f} s)"
        delay = rng.uniform(3.0, 10.0)
        rx.kill()
        rx.restart_at = time.monotonic() + delay
        self.counts["kill"] += 1
        return f"kill {rx.name} (restart in {delay:.0f} s)"

    def restart_due(self, force=False):
        for rx in self.receivers:
            if rx.thaw_at is not None and (force or time.monotonic() >= rx.thaw_at):
                rx.thaw()
                if self.a.verbose:
                    log(f"{rx.name} thawed (SIGCONT)")
            if rx.restart_at is not None and (force or time.monotonic() >= rx.restart_at):
                rx.start()
                rx.restart_at = None
                if self.a.verbose:
                    log(f"{rx.name} restarted on 127.0.0.1:{rx.port}")
                self.counts["restart"] += 1

    # -- observation

    def sample(self, phase):
        rt = self.antenne.runtime()
        pid = self.antenne.proc.pid
        st = proc_status(pid) or {}
        s = {"t": round(time.monotonic() - T0, 1), "phase": phase,
             "tasks": rt.get("tasks") if rt else None,
             "api_fds": rt.get("open_fds") if rt else None,
             "api_threads": rt.get("threads") if rt else None,
             "api_rss_kib": rt.get("rss_kib") if rt else None,
             "fds": proc_fds(pid), "threads": st.get("threads"), "rss_kib": st.get("rss_kib"),
             "dests": len(self.model),
             "enabled": sum(1 for d in self.model.values() if d["enabled"])}
        self.samples.append(s)
        new = not os.path.exists(self.samples_path)
        with open(self.samples_path, "a") as f:
            if new:
                f.write(",".join(s) + "\n")
            f.write(",".join("" if v is None else str(v) for v in s.values()) + "\n")
        if s["rss_kib"]:
            self.max_rss = max(self.max_rss, s["rss_kib"])
        return s

    def baseline(self, phase, n=None, gap=1.0):
        """n samples gap seconds apart: min/max of each figure. The minimum
        of tasks and fds is what is compared (a request in flight adds a
        task and a socket for a moment); RSS uses the median."""
        ss, kinds = [], []
        for i in range(n or BASE_SAMPLES):
            if i:
                time.sleep(gap)
            ss.append(self.sample(phase))
            kinds.append(proc_fd_kinds(self.antenne.proc.pid))
        # The kinds of fds at the sample with the fewest.
        out = {"fd_kinds": min(kinds, key=lambda k: sum(k.values()))}
        for k in ("tasks", "fds", "api_fds", "threads", "rss_kib"):
            vals = [s[k] for s in ss if s[k] is not None]
            if not vals:
                raise AntenneDied(f"no {k} figure from antenne ({phase})")
            out[k] = {"min": min(vals), "max": max(vals), "median": statistics.median(vals)}
        return out

    def status_line(self, lst=None):
        lst = self.antenne.destinations() if lst is None else lst
        states = {}
        reconnects = dropped = 0
        for d in lst or []:
            st = d.get("status") or {}
            states[st.get("state", "?")] = states.get(st.get("state", "?"), 0) + 1
            reconnects += int(st.get("reconnects") or 0)
            dropped += int(st.get("dropped_frames") or 0)
        s = " ".join(f"{k} {v}" for k, v in sorted(states.items()))
        return s, reconnects, dropped

    def progress(self, elapsed, total, n_actions):
        s = self.sample("run")
        lst = self.antenne.destinations()
        states, rec, drop = self.status_line(lst)
        # Each enabled destination has a supervisor task, each live one
        # also the ingest watcher of its connection: what is left is
        # antenne's fixed tasks, which the start measured. Racy (two
        # requests), so a small excess now and then is normal; one that
        # grows is not.
        excess = ""
        if lst is not None and s["tasks"] is not None:
            en = sum(1 for d in lst if d.get("enabled"))
            live = sum(1 for d in lst if (d.get("status") or {}).get("state") == "live")
            excess = f" (excess {s['tasks'] - self.fixed_tasks - en - live:+d})"
        down = [r.name + ("(frozen)" if r.thaw_at is not None else "")
                for r in self.receivers if not r.up or r.thaw_at is not None]
        c = self.counts
        log(f"{fmt_dur(elapsed)}/{fmt_dur(total)} actions {n_actions} "
            f"(tog {c['toggle_on'] + c['toggle_off']} add {c['add']} del {c['delete']} "
            f"edit {c['edit_key'] + c['edit_url'] + c['edit_url_key'] + c['edit_name']} "
            f"kill {c['kill']}{' freeze ' + str(c['freeze']) if self.a.freeze else ''}) | dests {len(self.model)} en {s['enabled']}: {states} "
            f"| rx down {','.join(down) or '-'} | tasks {s['tasks']}{excess} fds {s['fds']} "
            f"thr {s['threads']} rss {(s['rss_kib'] or 0) / MIB:.1f} MiB "
            f"| reconnects {rec} dropped {drop} api-err {len(self.api_errors)} "
            f"timeouts {len(self.api_timeouts)}")

    def converged(self):
        """(ok, problems): every enabled destination live and publishing at
        its receiver, every disabled one disabled, the API agrees with the
        script's model, no receiver holds a stream nobody sends."""
        lst = self.antenne.destinations()
        if lst is None:
            return False, ["GET /destinations did not answer"]
        problems = []
        by_name = {d["name"]: d for d in lst}
        if set(by_name) != set(self.model):
            problems.append(f"API has {sorted(set(by_name) - set(self.model))} extra, "
                            f"{sorted(set(self.model) - set(by_name))} missing")
        rx_streams = {}
        for r in self.receivers:
            st = r.streams()
            if st is None:
                problems.append(f"{r.name} stat page unreadable")
                st = {}
            rx_streams[r.index] = st
        expected = {r.index: set() for r in self.receivers}
        for name in self.sorted_names():
            m = self.model[name]
            d = by_name.get(name)
            if d is None:
                continue
            st = d.get("status") or {}
            state = st.get("state")
            want_url = self.receivers[m["rx"]].url() if m["rx"] is not None else "?"
            if d["enabled"] != m["enabled"] or d["key"] != m["key"] or d["url"] != want_url:
                problems.append(f"{name}: API says enabled={d['enabled']} url={d['url']} "
                                f"key={d['key']}, expected enabled={m['enabled']} "
                                f"url={want_url} key={m['key']}")
            if m["enabled"]:
                expected[m["rx"]].add(m["key"])
                if state != "live":
                    problems.append(f"{name} ({d['id']}, rx{m['rx']}) is {state}, not live "
                                    f"(reconnects {st.get('reconnects')}, last_error "
                                    f"{st.get('last_error')!r})")
                elif m["key"] not in rx_streams.get(m["rx"], {}):
                    problems.append(f"{name} ({d['id']}) is live but {m['key']} is not "
                                    f"publishing at rx{m['rx']}")
            elif state != "disabled":
                problems.append(f"{name} ({d['id']}) is disabled but its state is {state}")
        for idx, st in rx_streams.items():
            extra = sorted(set(st) - expected[idx])
            if extra:
                problems.append(f"rx{idx} has streams nobody should send: {extra}")
        return not problems, problems

    def wait_converged(self, timeout, what):
        t = time.monotonic()
        deadline = t + timeout
        ok, problems = False, []
        last_log = t
        while True:
            self.alive_or_raise()
            self.check_publisher()
            ok, problems = self.converged()
            if ok or time.monotonic() >= deadline:
                break
            if time.monotonic() - last_log >= 15:
                last_log = time.monotonic()
                log(f"{what}: waiting ({len(problems)} problem(s), e.g. {problems[0]})")
            time.sleep(2.0)
        took = time.monotonic() - t
        if ok:
            log(f"{what}: converged in {took:.0f} s")
        else:
            log(f"{what}: NOT converged after {took:.0f} s: {len(problems)} problem(s)")
            for p in problems[:20]:
                log(f"  {p}")
        return ok, problems, took

    def flowing(self, seconds=6.0):
        """Enabled destinations whose bytes_sent did not grow in `seconds`."""
        a = {d["name"]: (d.get("status") or {}).get("bytes_sent", 0)
             for d in self.antenne.destinations() or []}
        time.sleep(seconds)
        b = {d["name"]: (d.get("status") or {}).get("bytes_sent", 0)
             for d in self.antenne.destinations() or []}
        return [n for n in self.sorted_names(lambda d: d["enabled"])
                if not (n in a and n in b and b[n] > a[n])]

    # -- phases

    def setup(self):
        a = self.a
        self.clip = pre_encode(self.tmp, 10)
        taken = set()
        for i in range(a.receivers):
            self.receivers.append(Receiver(i, self.tmp, taken).start())
        log("receivers: " + ", ".join(f"{r.name} 127.0.0.1:{r.port}" for r in self.receivers))
        self.antenne.start()
        log(f"antenne pid {self.antenne.proc.pid}: rtmp 127.0.0.1:{self.antenne.port}, "
            f"http 127.0.0.1:{self.antenne.http}")
        self.start_publisher()
        if not wait_until(30, self.antenne.ingest_live, interval=0.5):
            raise SetupError(f"ingest never went live; antenne log tail:\n{tail(self.antenne.log)}"
                             f"\npublisher log:\n{tail(self.publisher.bench_log)}")
        for i in range(a.destinations):
            self.add(enabled=True, rx=i % len(self.receivers), initial=True)
        if self.api_errors or self.api_timeouts or len(self.model) != a.destinations:
            raise SetupError(f"could not add the initial destinations: "
                             f"{(self.api_errors + self.api_timeouts)[:3]}")
        ok, problems, _ = self.wait_converged(60 + 2 * a.destinations, "initial destinations")
        if not ok:
            raise SetupError("the initial destinations did not all go live: "
                             + "; ".join(problems[:5]))
        log(f"settling {a.settle:g} s before the start sample")
        time.sleep(a.settle)
        self.start = self.baseline("start")
        self.fixed_tasks = self.start["tasks"]["min"] - 2 * a.destinations
        log(f"start: {self.fmt_base(self.start)}")

    @staticmethod
    def fmt_base(b):
        return (f"tasks {b['tasks']['min']} (max {b['tasks']['max']}), fds {b['fds']['min']} "
                f"(max {b['fds']['max']}; {b['fd_kinds']}), threads {b['threads']['min']}-"
                f"{b['threads']['max']}, rss {b['rss_kib']['median'] / MIB:.1f} MiB")

    def run(self):
        a = self.a
        t_run = time.monotonic()
        end = t_run + a.duration
        next_action = t_run + a.interval
        next_sample = t_run + a.sample_every
        next_progress = t_run + 60.0
        n_actions = 0
        log(f"soak: {fmt_dur(a.duration)} of actions every {a.interval:g} s, seed {a.seed}")
        while True:
            now = time.monotonic()
            if now >= end:
                break
            self.alive_or_raise()
            self.check_publisher()
            self.restart_due()
            if now >= next_action:
                what = self.act()
                n_actions += 1
                if a.verbose:
                    log(f"action {n_actions}: {what}")
                next_action += a.interval
                if next_action < time.monotonic():  # fell behind: do not burst
                    next_action = time.monotonic() + a.interval
            if now >= next_sample:
                self.sample("run")
                next_sample += a.sample_every
            if now >= next_progress:
                self.progress(now - t_run, a.duration, n_actions)
                next_progress += 60.0
            time.sleep(max(0.05, min(0.5, next_action - time.monotonic())))
        self.n_actions = n_actions
        log(f"actions stopped after {n_actions}; restarting the receivers that are down")
        self.restart_due(force=True)

    def finish(self):
        a = self.a
        res = {}
        # 1. Everything comes back as the API says it should.
        ok1, problems1, took1 = self.wait_converged(a.final_wait, "end state")
        states, rec, drop = self.status_line()
        res["end_state"] = (ok1, problems1, took1, states, len(self.model),
                            sum(1 for d in self.model.values() if d["enabled"]))
        res["reconnects"], res["dropped"] = rec, drop
        stalled = self.flowing() if ok1 else []
        res["stalled"] = stalled
        # 2. Back to the start's shape: the run's additions deleted, topped
        # up to --destinations with fresh ones, all enabled.
        added = self.sorted_names(lambda d: not d["initial"])
        for name in added:
            self.delete(name)
        topped = 0
        while len(self.model) < a.destinations:
            self.add(enabled=True, rx=topped % len(self.receivers))
            topped += 1
        for name in self.sorted_names(lambda d: not d["enabled"]):
            self.patch(name, {"enabled": True}, "enabled (restore)")
        log(f"restore: deleted {len(added)} added during the run, added {topped} fresh, "
            f"{len(self.model)} destinations, all enabled")
        ok2, problems2, took2 = self.wait_converged(a.final_wait, "restored set")
        res["restore"] = (ok2, problems2, took2, len(added), topped)
        log(f"settling {a.settle:g} s before the end sample")
        time.sleep(a.settle)
        self.end = self.baseline("end")
        log(f"end:   {self.fmt_base(self.end)}")
        with open(self.antenne.log, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        res["panics"] = [ln for ln in text.splitlines() if "panicked" in ln][:5]
        return res

    def summary(self, res):
        a, s, e = self.a, self.start, self.end
        fails = []
        out = []
        ok1, problems1, took1, states, ndest, nen = res["end_state"]
        out.append(f"soak: {fmt_dur(a.duration)}, {a.destinations} destinations on "
                   f"{a.receivers} receivers, action every {a.interval:g} s, seed {a.seed}")
        c = self.counts
        out.append(f"actions: {self.n_actions} (toggle on {c['toggle_on']} / off "
                   f"{c['toggle_off']}, add {c['add']}, delete {c['delete']}, edit key "
                   f"{c['edit_key']} / url {c['edit_url']} / url+key {c['edit_url_key']} / name "
                   f"{c['edit_name']}, receiver kills {c['kill']}"
                   + (f", receiver freezes {c['freeze']}" if a.freeze else "")
                   + "); publisher restarts "
                   f"{self.publisher_restarts}; API errors {len(self.api_errors)}, "
                   f"API calls without answer {len(self.api_timeouts)}")
        out.append(f"end state: {ndest} destinations, {nen} enabled: {states}; reconnects "
                   f"{res['reconnects']}, dropped frames {res['dropped']} (of the destinations "
                   f"still there)")
        if ok1:
            out.append(f"  PASS every enabled destination live and publishing at its receiver, "
                       f"every disabled one disabled ({took1:.0f} s after the actions stopped)")
        else:
            fails.append("end state")
            out.append(f"  FAIL not converged after {took1:.0f} s:")
            out.extend(f"       {p}" for p in problems1[:30])
        if res["stalled"]:
            fails.append("bytes not flowing")
            out.append(f"  FAIL live but bytes_sent not growing: {res['stalled']}")
        ok2, problems2, took2, ndel, ntop = res["restore"]
        out.append(f"restore: deleted {ndel} destinations added during the run, added {ntop} "
                   f"fresh ones: {a.destinations} enabled, as at the start")
        if ok2:
            out.append(f"  PASS restored set live in {took2:.0f} s")
        else:
            fails.append("restored set")
            out.append(f"  FAIL restored set not live after {took2:.0f} s:")
            out.extend(f"       {p}" for p in problems2[:30])

        def line(label, key, tol, unit="", scale=1.0, stat="min", spec="g"):
            v0, v1 = s[key][stat] / scale, e[key][stat] / scale
            d = v1 - v0
            ok = d <= tol
            if not ok:
                fails.append(label)

            def f(x):
                return format(x, spec)

            out.append(f"  {'PASS' if ok else 'FAIL'} {label:7s} start {f(v0)}{unit} "
                       f"[{f(s[key]['min'] / scale)}..{f(s[key]['max'] / scale)}]  "
                       f"end {f(v1)}{unit} [{f(e[key]['min'] / scale)}..{f(e[key]['max'] / scale)}]"
                       f"  delta {d:+{spec}}{unit}  (allowed +{tol:g}{unit}; {stat} of "
                       f"{BASE_SAMPLES} samples [min..max])")

        out.append(f"resources (same shape: {a.destinations} enabled live destinations, "
                   f"{a.settle:g} s settle):")
        line("tasks", "tasks", a.task_tolerance)
        line("fds", "fds", a.fd_tolerance)
        line("threads", "threads", a.thread_tolerance)
        line("rss", "rss_kib", a.rss_tolerance_mib, " MiB", MIB, "median", ".1f")
        out.append(f"  info fd kinds start "
                   f"{s['fd_kinds']} end {e['fd_kinds']}; max RSS during the run "
                   f"{self.max_rss / MIB:.1f} MiB")
        run = [x for x in self.samples if x["phase"] == "run" and x["tasks"] is not None]
        if run:
            out.append(f"  info during the run: tasks {min(x['tasks'] for x in run)}.."
                       f"{max(x['tasks'] for x in run)}, fds {min(x['fds'] for x in run)}.."
                       f"{max(x['fds'] for x in run)} ({len(run)} samples in samples.csv)")
        if res["panics"]:
            fails.append("panic")
            out.append(f"  FAIL antenne log has panics: {res['panics']}")
        if self.api_errors:
            fails.append("API errors")
            out.append(f"  FAIL unexpected API answers: {self.api_errors[:10]}")
        if self.api_timeouts:
            out.append(f"  note API calls without answer: {self.api_timeouts[:10]}")
        for n in self.notes[:10]:
            out.append(f"  note {n}")
        out.append(("RESULT: PASS" if not fails else f"RESULT: FAIL ({', '.join(fails)})")
                   + f" in {fmt_dur(time.monotonic() - T0)}")
        print("\n".join(out), flush=True)
        return not fails


class AntenneDied(Exception):
    pass


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--duration", type=parse_duration, default=parse_duration("1h"),
                    help="how long the random actions go on (1h, 10m, 90s; seconds)")
    ap.add_argument("--destinations", type=int, default=50,
                    help="destinations at the start; the count stays around it")
    ap.add_argument("--receivers", type=int, default=5, help="nginx-rtmp receivers")
    ap.add_argument("--interval", type=float, default=3.0, help="seconds between actions")
    ap.add_argument("--seed", type=int, default=None,
                    help="random seed of the actions (printed; default: a random one)")
    ap.add_argument("--settle", type=float, default=20.0,
                    help="seconds to wait before the start and end samples")
    ap.add_argument("--final-wait", type=float, default=120.0,
                    help="bound on the wait for everything to come back at the end "
                         "(retry backoff alone is up to 30 s)")
    ap.add_argument("--sample-every", type=float, default=10.0,
                    help="seconds between runtime samples during the run")
    ap.add_argument("--task-tolerance", type=int, default=0,
                    help="live tasks the end may have above the start")
    ap.add_argument("--fd-tolerance", type=int, default=0,
                    help="open fds the end may have above the start")
    ap.add_argument("--thread-tolerance", type=int, default=0,
                    help="threads the end may have above the start")
    ap.add_argument("--rss-tolerance-mib", type=float, default=10.0,
                    help="MiB of RSS the end may have above the start (allocator slack)")
    ap.add_argument("--stall-timeout", type=int, default=10, help="antenne --stall-timeout-secs")
    ap.add_argument("--grace-period", type=int, default=30, help="antenne --grace-period-secs")
    ap.add_argument("--no-build", action="store_true",
                    help="do not run cargo build --release -p antenne (use the existing binary)")
    ap.add_argument("--keep-tmp", action="store_true",
                    help="keep the temp dir (logs, samples.csv) even when the run passes")
    ap.add_argument("--freeze", action="store_true",
                    help="half of the receiver kills become freezes instead: SIGSTOP for "
                         "5-25 s, then SIGCONT (a hung server rather than a dead one)")
    ap.add_argument("--verbose", action="store_true", help="log every action")
    a = ap.parse_args()
    if a.destinations < 1 or a.receivers < 1 or a.interval <= 0:
        ap.error("--destinations and --receivers must be >= 1, --interval > 0")
    if a.seed is None:
        a.seed = int.from_bytes(os.urandom(4), "big")
    for prog in ("ffmpeg", "nginx") + (() if a.no_build else ("cargo",)):
        if not shutil.which(prog):
            sys.exit(f"{prog} not found in PATH")
    if not os.path.isfile(RTMP_MODULE):
        sys.exit(f"{RTMP_MODULE} missing (Debian package libnginx-mod-rtmp)")

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    atexit.register(PROCS.kill_all)

    tmp = tempfile.mkdtemp(prefix="antenne-soak-")
    log(f"seed {a.seed} (replay the same actions with --seed {a.seed}); temp dir {tmp}")
    status = 2
    try:
        target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
        built = os.path.join(target, "release", "antenne")
        if not a.no_build:
            log("cargo build --release -p antenne ...")
            r = subprocess.run(["cargo", "build", "--release", "-p", "antenne"],
                               cwd=REPO, stdout=sys.stderr, stderr=sys.stderr)
            if r.returncode != 0:
                sys.exit("cargo build failed")
        if not os.access(built, os.X_OK):
            sys.exit(f"{built} missing")
        # A copy: others may rebuild target/ while the soak runs.
        binary = os.path.join(tmp, "antenne-bin")
        shutil.copy2(built, binary)
        log(f"antenne binary {built} (mtime {time.ctime(os.path.getmtime(built))}), "
            f"run from a copy")
        soak = Soak(a, tmp, binary)
        try:
            soak.setup()
            soak.run()
            res = soak.finish()
            status = 0 if soak.summary(res) else 1
        except AntenneDied as e:
            print(f"RESULT: FAIL (antenne) {e}", flush=True)
            status = 1
        except SetupError as e:
            log(f"could not run: {e}")
            status = 2
        except Exception:  # a fault of the script or its surroundings
            log(f"could not run:\n{traceback.format_exc()}")
            status = 2
    except KeyboardInterrupt as e:
        log(f"interrupted ({e or 'SIGINT'}); stopping everything")
        status = 130
    finally:
        PROCS.kill_all()
        if a.keep_tmp or status != 0:
            log(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
