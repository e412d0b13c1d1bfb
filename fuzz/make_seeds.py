#!/usr/bin/env python3
"""Regenerates the fuzz seed corpora in fuzz/seeds/<target>/ from real RTMP
sessions, captured on the wire.

    python3 fuzz/make_seeds.py [--no-obs] [--out fuzz/seeds]

What it does (127.0.0.1 only, temporary directory, everything stopped at
the end):
1. Starts nginx-rtmp (Debian `nginx` + `libnginx-mod-rtmp`) as the server:
   application `live` (a sink) and application `relay`, which pushes what
   it receives to the capture proxy.
2. Starts a capture proxy in this process: it accepts publishers, forwards
   to nginx's `live`, and records both directions of each connection.
3. Publishers, each through the proxy:
   - ffmpeg: H.264 + AAC (testsrc2, 160x90), and H.263 (flv1) + MP3;
   - nginx-rtmp's own `push` (ffmpeg publishes to `relay`, nginx pushes);
   - OBS Studio (29, Debian's obs-studio) under Xvfb, `--startstreaming`,
     unless --no-obs or OBS / Xvfb are missing.
4. Splits each capture into per-target seeds: handshake bytes (C0 C1 C2 and
   S0 S1 S2), post-handshake chunk streams (client to server and back),
   individual messages (AMF0 command and data bodies, control messages),
   and FLV tag bodies (sequence headers, keyframes, inter frames, audio).
   Adds a few hand-made inputs the captures cannot contain: Enhanced RTMP
   tag headers (ffmpeg 5.1 and OBS 29 do not send them), destination URLs.

The first bytes of some seeds are the harness's parameters (see each
fuzz_targets/<target>.rs): they are written as 0 (defaults, one piece) and
a few variants.
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HANDSHAKE = 1 + 2 * 1536
RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
# How much of a post-handshake chunk stream a seed keeps (cut at a message
# boundary): connect … publish, metadata, sequence headers, first frames.
STREAM_SEED_MAX = 12 * 1024
# FLV bodies: the inspector reads the first bytes only.
FLV_SEED_MAX = 256


def log(*a):
    print("[make_seeds]", *a, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


class Proxy:
    """Accepts on 127.0.0.1:port, forwards to 127.0.0.1:upstream, records
    client->server and server->client bytes per connection."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.sessions = []  # [c2s bytearray, s2c bytearray]
        self.lock = threading.Lock()
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            rec = [bytearray(), bytearray()]
            with self.lock:
                self.sessions.append(rec)
            for src, dst, buf in ((client, server, rec[0]), (server, client, rec[1])):
                threading.Thread(target=self.pump, args=(src, dst, buf), daemon=True).start()

    def pump(self, src, dst, buf):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.lock:
                    buf.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def take(self):
        """The sessions recorded since the last call."""
        with self.lock:
            out = [(bytes(a), bytes(b)) for a, b in self.sessions]
            self.sessions = []
        return out


def start_nginx(tmp, port, push_port):
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""load_module {RTMP_MODULE};
master_process off;
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log info;
events {{ worker_connections 64; }}
rtmp {{
  server {{
    listen 127.0.0.1:{port};
    chunk_size 4096;
    application live {{ live on; }}
    application relay {{
      live on;
      push rtmp://127.0.0.1:{push_port}/live/pushed_by_nginx;
    }}
  }}
}}
""")
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(tmp, "nginx.out"), "w"))
    if not wait_port(port):
        proc.kill()
        sys.exit("nginx did not start; see " + tmp)
    return proc


def ffmpeg_publish(url, seconds, video, audio, size="160x90"):
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
           "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=15",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
           "-t", str(seconds)] + video + audio + ["-f", "flv", url]
    subprocess.run(cmd, check=True, timeout=seconds + 30)


def run_obs(tmp, url, key, seconds):
    """OBS 29 under Xvfb, streaming with --startstreaming; killed after
    `seconds`. Returns False when OBS or Xvfb is missing or OBS never
    connected."""
    if not (shutil.which("obs") and shutil.which("Xvfb")):
        log("OBS or Xvfb missing: no OBS capture")
        return False
    d = os.path.join(tmp, "obs")
    home = os.path.join(d, "home")
    cfg = os.path.join(home, ".config/obs-studio")
    for sub in ("basic/profiles/Seed", "basic/scenes", "logs"):
        os.makedirs(os.path.join(cfg, sub), exist_ok=True)
    clip = os.path.join(d, "clip.mp4")
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-t", "10", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", clip], check=True)
    last_version = (29 << 24) | 2
    with open(os.path.join(cfg, "global.ini"), "w") as f:
        f.write(f"""[General]
Pre19Defaults=false
Pre21Defaults=false
Pre23Defaults=false
Pre24.1Defaults=false
FirstRun=true
LastVersion={last_version}
EnableAutoUpdates=false
ConfirmOnExit=false

[Basic]
Profile=Seed
ProfileDir=Seed
SceneCollection=Seed
SceneCollectionFile=Seed
ConfigOnNewProfile=false

[BasicWindow]
SysTrayEnabled=false
WarnBeforeStartingStream=false
WarnBeforeStoppingStream=false
PreviewEnabled=false
""")
    with open(os.path.join(cfg, "basic/profiles/Seed/basic.ini"), "w") as f:
        f.write(f"""[General]
Name=Seed

[Output]
Mode=Simple

[SimpleOutput]
FilePath={d}
VBitrate=300
ABitrate=64
UseAdvanced=true
Preset=ultrafast
x264Settings=keyint=30
StreamEncoder=x264

[Video]
BaseCX=320
BaseCY=180
OutputCX=320
OutputCY=180
FPSType=1
FPSInt=30
ColorFormat=NV12

[Audio]
SampleRate=48000
ChannelSetup=Stereo
""")
    with open(os.path.join(cfg, "basic/profiles/Seed/service.json"), "w") as f:
        f.write('{"type":"rtmp_custom","settings":{"server":"%s","key":"%s",'
                '"use_auth":false,"bwtest":false}}' % (url, key))
    scene = {
        "name": "Seed", "current_scene": "Clip", "current_program_scene": "Clip",
        "scene_order": [{"name": "Clip"}], "transitions": [], "groups": [],
        "sources": [
            {"id": "scene", "versioned_id": "scene", "name": "Clip", "enabled": True,
             "settings": {"id_counter": 1, "items": [
                 {"name": "TestClip", "id": 1, "visible": True, "scale": {"x": 1.0, "y": 1.0},
                  "pos": {"x": 0.0, "y": 0.0}, "align": 5}]}},
            {"id": "ffmpeg_source", "versioned_id": "ffmpeg_source", "name": "TestClip",
             "enabled": True, "mixers": 255, "volume": 1.0,
             "settings": {"is_local_file": True, "local_file": clip, "looping": True}},
        ],
    }
    with open(os.path.join(cfg, "basic/scenes/Seed.json"), "w") as f:
        json.dump(scene, f)
    xvfb_log = open(os.path.join(d, "xvfb.log"), "w+")
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1024x768x24",
                             "-nolisten", "tcp"], stdout=xvfb_log, stderr=subprocess.DEVNULL)
    display = None
    for _ in range(100):
        xvfb_log.seek(0)
        n = xvfb_log.read().strip()
        if n.isdigit():
            display = ":" + n
            break
        time.sleep(0.1)
    if display is None:
        xvfb.kill()
        log("Xvfb did not start: no OBS capture")
        return False
    xdg = os.path.join(d, "xdg")
    os.makedirs(xdg, mode=0o700, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if k not in ("XDG_CONFIG_HOME", "WAYLAND_DISPLAY", "SESSION_MANAGER")}
    env.update(HOME=home, DISPLAY=display, XDG_RUNTIME_DIR=xdg, QT_QPA_PLATFORM="xcb",
               LIBGL_ALWAYS_SOFTWARE="1")
    obs = subprocess.Popen(["obs", "--multi", "--disable-missing-files-check",
                            "--profile", "Seed", "--collection", "Seed", "--startstreaming"],
                           env=env, cwd=d, stdout=open(os.path.join(d, "obs.log"), "w"),
                           stderr=subprocess.STDOUT)
    try:
        time.sleep(seconds)
    finally:
        obs.kill()
        obs.wait()
        xvfb.kill()
        xvfb.wait()
    return True


def decode_chunks(data):
    """A minimal RTMP chunk decoder (the protocol, not our code): returns
    the complete messages as (end offset, type id, payload)."""
    chunk_size = 128
    streams = {}
    out = []
    pos = 0
    n = len(data)
    while pos < n:
        start = pos
        b = data[pos]
        fmt, csid = b >> 6, b & 0x3F
        pos += 1
        if csid == 0:
            if pos + 1 > n:
                break
            csid = 64 + data[pos]
            pos += 1
        elif csid == 1:
            if pos + 2 > n:
                break
            csid = 64 + data[pos] + (data[pos + 1] << 8)
            pos += 2
        hlen = (11, 7, 3, 0)[fmt]
        if pos + hlen > n:
            break
        s = streams.setdefault(csid, {"len": 0, "type": 0, "ext": False, "buf": bytearray()})
        h = data[pos:pos + hlen]
        pos += hlen
        if fmt <= 2:
            ts = int.from_bytes(h[0:3], "big")
            s["ext"] = ts == 0xFFFFFF
        if fmt <= 1:
            s["len"] = int.from_bytes(h[3:6], "big")
            s["type"] = h[6]
        if fmt <= 2:
            s["buf"] = bytearray()
        if s["ext"]:
            if pos + 4 > n:
                break
            pos += 4
        take = min(chunk_size, s["len"] - len(s["buf"]))
        if pos + take > n:
            pos = start
            break
        s["buf"].extend(data[pos:pos + take])
        pos += take
        if len(s["buf"]) == s["len"]:
            payload = bytes(s["buf"])
            s["buf"] = bytearray()
            if s["type"] == 1 and len(payload) >= 4:
                chunk_size = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
            out.append((pos, s["type"], payload))
    return out


class Seeds:
    def __init__(self, root):
        self.root = root
        self.seen = set()
        self.count = {}

    def add(self, target, name, data):
        digest = hashlib.sha1(data).hexdigest()
        if (target, digest) in self.seen:
            return
        self.seen.add((target, digest))
        d = os.path.join(self.root, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{name}-{digest[:8]}"), "wb") as f:
            f.write(data)
        self.count[target] = self.count.get(target, 0) + 1


def prefix_at_boundary(stream, messages, limit):
    """The longest prefix of `stream` ending at a message boundary within
    `limit` bytes (at least the first message)."""
    end = 0
    for off, _, _ in messages:
        if off > limit and end:
            break
        end = off
    return stream[:end]


def split_session(seeds, label, c2s, s2c):
    if len(c2s) < HANDSHAKE or len(s2c) < HANDSHAKE:
        log(f"{label}: session too short ({len(c2s)} / {len(s2c)} bytes), skipped")
        return
    # handshake: [side|split seed][bytes]; server side gets C0 C1 C2, client side S0 S1 S2.
    seeds.add("handshake", f"{label}-c0c1c2", b"\x00" + c2s[:HANDSHAKE])
    seeds.add("handshake", f"{label}-c0c1c2-split", b"\x0b" + c2s[:HANDSHAKE])
    seeds.add("handshake", f"{label}-s0s1s2", b"\x80" + s2c[:HANDSHAKE])
    seeds.add("handshake", f"{label}-s0s1s2-split", b"\x8b" + s2c[:HANDSHAKE])

    up, down = c2s[HANDSHAKE:], s2c[HANDSHAKE:]
    up_msgs, down_msgs = decode_chunks(up), decode_chunks(down)
    up_seed = prefix_at_boundary(up, up_msgs, STREAM_SEED_MAX)
    down_seed = prefix_at_boundary(down, down_msgs, STREAM_SEED_MAX)
    # chunk_decoder: [limits][split seed][chunk size][stream]
    seeds.add("chunk_decoder", f"{label}-publisher", b"\x00\x00\x00" + up_seed)
    seeds.add("chunk_decoder", f"{label}-publisher-split", b"\x00\x07\x00" + up_seed)
    seeds.add("chunk_decoder", f"{label}-publisher-limits", b"\x01\x00\x00" + up_seed)
    seeds.add("chunk_decoder", f"{label}-server", b"\x00\x00\x00" + down_seed)
    # server_session: [flags][split seed][stream]; flags 3 = accept both,
    # 0x83 = feed the real handshake too.
    seeds.add("server_session", f"{label}-publish", b"\x03\x00" + up_seed)
    seeds.add("server_session", f"{label}-publish-split", b"\x03\x09" + up_seed)
    seeds.add("server_session", f"{label}-publish-raw",
              b"\x83\x00" + c2s[:HANDSHAKE] + up_seed)
    seeds.add("server_session", f"{label}-reject-publish", b"\x01\x00" + up_seed)
    # client_session: [flags][split seed][stream]
    seeds.add("client_session", f"{label}-answers", b"\x00\x00" + down_seed)
    seeds.add("client_session", f"{label}-answers-raw", b"\x80\x05" + s2c[:HANDSHAKE] + down_seed)

    flv_kinds = {}
    for direction, msgs in (("up", up_msgs), ("down", down_msgs)):
        for _, type_id, payload in msgs:
            if type_id in (8, 9):
                if not payload:
                    continue
                if type_id == 9:
                    first, second = payload[0], payload[1] if len(payload) > 1 else -1
                    kind = ("video-seqhdr" if second == 0 else
                            "video-key" if first >> 4 == 1 else "video-inter")
                else:
                    kind = "audio-seqhdr" if len(payload) > 1 and payload[1] == 0 else "audio"
                n = flv_kinds.get(kind, 0)
                if n < 2:
                    flv_kinds[kind] = n + 1
                    seeds.add("flv", f"{label}-{kind}", payload[:FLV_SEED_MAX])
                if n < 1:
                    seeds.add("command", f"{label}-{kind}", bytes([type_id]) + payload[:FLV_SEED_MAX])
                continue
            if type_id in (18, 20, 15, 17):
                what = {18: "data", 20: "command", 15: "data-amf3", 17: "command-amf3"}[type_id]
                name = f"{label}-{direction}-{what}"
                body = payload[1:] if type_id == 17 else payload
                seeds.add("amf0", name, body)
            else:
                name = f"{label}-{direction}-control{type_id}"
            seeds.add("command", name, bytes([type_id]) + payload)


def handmade(seeds):
    """Inputs no capture holds."""
    # Enhanced RTMP video: [IsExHeader|FrameType<<4|PacketType][FourCC][…]
    for fourcc in (b"hvc1", b"av01", b"vp09", b"avc1"):
        for frame_type, packet_type, what in ((1, 0, "seqstart"), (1, 1, "coded"),
                                              (2, 3, "codedx"), (1, 2, "seqend"),
                                              (1, 4, "metadata"), (5, 0, "command")):
            body = bytes([0x80 | frame_type << 4 | packet_type]) + fourcc + b"\x01\x02\x03\x04"
            seeds.add("flv", f"ertmp-{fourcc.decode()}-{what}", body)
    # Enhanced RTMP audio: [9<<4|PacketType][FourCC]
    for fourcc in (b"Opus", b"fLaC", b"ac-3", b"ec-3", b".mp3", b"mp4a"):
        for packet_type in (0, 1):
            seeds.add("flv", f"ertmp-audio-{fourcc.decode()}-{packet_type}",
                      bytes([0x90 | packet_type]) + fourcc + b"\x00\x01")
    # Legacy HEVC (codec 12) as some encoders send it, and truncated bodies.
    seeds.add("flv", "legacy-hevc-seq", b"\x1c\x00\x00\x00\x00\x01")
    seeds.add("flv", "truncated-80", b"\x80")
    seeds.add("flv", "truncated-17", b"\x17")
    # AMF0 strict arrays nested 32 deep, each announcing what remains (the
    # shape that made the decoder reserve many times its input).
    levels, nulls = 32, 200
    nested = b"".join(b"\x0a" + (5 * (levels - 1 - i) + nulls).to_bytes(4, "big")
                      for i in range(levels)) + b"\x05" * nulls
    seeds.add("amf0", "nested-strict-arrays", nested)
    seeds.add("command", "nested-strict-arrays", b"\x14\x02\x00\x07connect\x00" + bytes(8) + nested)
    # Destination URLs: "url\nkey".
    for url, key in (
        ("rtmp://a.rtmp.youtube.com/live2", "abcd-efgh-ijkl-mnop"),
        ("rtmps://live-api-s.facebook.com:443/rtmp/", "FB-123?s_bl=1&s_sc=2"),
        ("rtmp://live.twitch.tv/app", "live_123456789_abcdef"),
        ("rtmps://fa723fc1b171.global-contribute.live-video.net/app", "sk_us-west"),
        ("rtmp://host:1940/app/sub?token=x", "k"),
        ("rtmp://127.0.0.1:1935/live/stream1", ""),
        ("rtmp://h/a/b/name?x=1", ""),
        ("rtmp://[::1]:1936/live", "k"),
        ("rtmp://user:pass@host/live", "k"),
        ("RTMP://HOST/LIVE/", " key "),
        ("http://x/live", "k"),
        # Inputs that found bugs (see docs/fuzzing.md).
        ("rtmp://a.rtmp/lx/lilrtmp://a.rtmpmvubyoumpmvubyoutube.cod%e//a-ijkl", ""),
        ("rtmp://b::1]:1936/live", "k"),
    ):
        seeds.add("url", "url", f"{url}\n{key}".encode())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "seeds"))
    ap.add_argument("--no-obs", action="store_true", help="skip the OBS capture")
    ap.add_argument("--obs-seconds", type=float, default=12.0)
    args = ap.parse_args()
    for prog in ("ffmpeg", "nginx"):
        if not shutil.which(prog):
            sys.exit(f"{prog} is missing (apt-get install ffmpeg nginx libnginx-mod-rtmp)")
    if not os.path.isfile(RTMP_MODULE):
        sys.exit(f"{RTMP_MODULE} is missing (apt-get install libnginx-mod-rtmp)")

    tmp = tempfile.mkdtemp(prefix="antenne-seeds-")
    nginx_port = free_port()
    proxy = None
    nginx = None
    captures = []
    try:
        # The proxy forwards to nginx; nginx's relay app pushes to the proxy.
        proxy_holder = Proxy(nginx_port)
        proxy = proxy_holder
        nginx = start_nginx(tmp, nginx_port, proxy.port)
        via_proxy = f"rtmp://127.0.0.1:{proxy.port}/live"

        log("ffmpeg: H.264 + AAC")
        ffmpeg_publish(f"{via_proxy}/ffmpeg_h264_key", 3,
                       ["-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-b:v", "200k"],
                       ["-c:a", "aac", "-b:a", "32k"])
        time.sleep(0.5)
        captures += [("ffmpeg-h264", *s) for s in proxy.take()]

        log("ffmpeg: H.263 (flv1) + MP3")
        ffmpeg_publish(f"{via_proxy}/ffmpeg_flv1_key", 2,
                       ["-c:v", "flv", "-b:v", "200k", "-g", "15"],
                       ["-c:a", "libmp3lame", "-b:a", "32k"])
        time.sleep(0.5)
        captures += [("ffmpeg-flv1", *s) for s in proxy.take()]

        log("nginx-rtmp push (ffmpeg -> nginx relay -> proxy -> nginx live)")
        ffmpeg_publish(f"rtmp://127.0.0.1:{nginx_port}/relay/src", 4,
                       ["-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-b:v", "200k"],
                       ["-c:a", "aac", "-b:a", "32k"])
        time.sleep(1.0)
        captures += [("nginx-push", *s) for s in proxy.take()]

        if not args.no_obs:
            log(f"OBS: --startstreaming for {args.obs_seconds} s")
            if run_obs(tmp, via_proxy, "obs_stream_key", args.obs_seconds):
                time.sleep(0.5)
                got = proxy.take()
                if not got:
                    log("OBS did not connect: no OBS capture (see " + tmp + "/obs/obs.log)")
                captures += [("obs", *s) for s in got]
    finally:
        if nginx is not None:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(5)
            except subprocess.TimeoutExpired:
                nginx.kill()

    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    seeds = Seeds(args.out)
    for i, (label, c2s, s2c) in enumerate(captures):
        log(f"{label}: {len(c2s)} bytes from the publisher, {len(s2c)} from the server")
        split_session(seeds, label, c2s, s2c)
    handmade(seeds)
    total = 0
    for target in sorted(seeds.count):
        d = os.path.join(args.out, target)
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        total += size
        log(f"{target}: {seeds.count[target]} seeds, {size} bytes")
    log(f"total {total} bytes in {args.out}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
