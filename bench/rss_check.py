#!/usr/bin/env python3
"""RSS of antenne under control-plane changes alone (no stream).

Starts target/release/antenne in a temp dir on free 127.0.0.1 ports, adds
50 disabled destinations, then PATCHes `enabled` on them in turn and
prints antenne's RSS and the size of its database (+ WAL) every
--every changes. Shows whether memory growth seen in the soak run follows
the saved changes and whether it levels off. Prints figures; never fails.

    python3 bench/rss_check.py [--changes 40000] [--every 1000]
"""
import argparse
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--changes", type=int, default=40000)
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--binary", default=os.path.join(REPO, "target", "release", "antenne"))
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="antenne-rss-check-")
    data = os.path.join(tmp, "data")
    token = "rss-check-token"
    http = free_port()
    env = dict(os.environ, ANTENNE_API_TOKEN=token, ANTENNE_ADMIN_PASSWORD="rss-check-pw-123",
               ANTENNE_LOG="warn")
    log = open(os.path.join(tmp, "antenne.log"), "w")
    proc = subprocess.Popen(
        [args.binary, "--rtmp-listen", f"127.0.0.1:{free_port()}", "--http-listen",
         f"127.0.0.1:{http}", "--data-dir", data, "--ingest-key", "rss-check"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def req(method, path, body=None):
        r = urllib.request.Request(
            f"http://127.0.0.1:{http}{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"authorization": "Bearer " + token, "content-type": "application/json"})
        with urllib.request.urlopen(r, timeout=10) as f:
            return json.loads(f.read() or b"null")

    def rss_mib():
        with open(f"/proc/{proc.pid}/status") as f:
            kib = next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
        return kib / 1024

    def db_mib():
        return sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data)) / 2**20

    try:
        for _ in range(100):
            try:
                req("GET", "/api/v1/health")
                break
            except OSError:
                time.sleep(0.1)
        ids = [req("POST", "/api/v1/destinations",
                   {"name": f"d{i}", "url": "rtmp://127.0.0.1:1/live", "key": f"k{i}",
                    "enabled": False})["id"] for i in range(50)]
        print(f"start: rss {rss_mib():.1f} MiB, db+wal {db_mib():.1f} MiB", flush=True)
        t0 = time.time()
        for n in range(1, args.changes + 1):
            req("PATCH", f"/api/v1/destinations/{ids[n % 50]}", {"enabled": (n // 50) % 2 == 0})
            if n % args.every == 0:
                print(f"after {n:6d} changes: rss {rss_mib():.1f} MiB, db+wal {db_mib():.1f} MiB"
                      f"  ({time.time() - t0:.0f} s)", flush=True)
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
        subprocess.run(["rm", "-rf", tmp], check=False)


if __name__ == "__main__":
    main()
