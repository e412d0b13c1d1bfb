#!/usr/bin/env bash
# The project's test command: bash scripts/test.sh [--no-lint] [--no-fuzz]
#
# 1. Installs the real peers the integration tests use, if missing (Debian,
#    as root): ffmpeg, nginx + libnginx-mod-rtmp, stunnel4, openssl,
#    chromium + chromium-driver, and for the OBS tests obs-studio (with
#    obs-websocket), xvfb, libgl1-mesa-dri, libegl1, x11-utils, and
#    libsrt1.5-openssl (SRT).
# 2. Lints: cargo fmt --check, cargo clippy -D warnings (skip with --no-lint).
# 3. cargo test --workspace.
# 4. A short run of every fuzz target over its seeds (bash scripts/fuzz.sh
#    --smoke; installs cargo-fuzz if missing; skip with --no-fuzz).
set -euo pipefail

usage() {
    echo "usage: bash scripts/test.sh [--no-lint] [--no-fuzz]"
    echo "  --no-lint   skip cargo fmt --check and cargo clippy"
    echo "  --no-fuzz   skip the fuzz smoke run (scripts/fuzz.sh --smoke)"
}

lint=1
fuzz=1
for arg in "$@"; do
    case "$arg" in
        --no-lint) lint=0 ;;
        --no-fuzz) fuzz=0 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "scripts/test.sh: unknown argument: $arg" >&2
            usage >&2
            exit 2
            ;;
    esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RTMP_MODULE=/usr/lib/nginx/modules/ngx_rtmp_module.so

missing=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
[ -f "$RTMP_MODULE" ] || missing+=(libnginx-mod-rtmp)
command -v stunnel4 >/dev/null 2>&1 || command -v stunnel >/dev/null 2>&1 || missing+=(stunnel4)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
# The Debian package test (tests/package.rs): systemd-analyze, strip,
# dpkg-deb and deb-systemd-helper, unshare/script/runuser, adduser.
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v strip >/dev/null 2>&1 || missing+=(binutils)
command -v deb-systemd-helper >/dev/null 2>&1 || missing+=(init-system-helpers)
command -v adduser >/dev/null 2>&1 || missing+=(adduser)
command -v script >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1 || missing+=(util-linux bsdutils)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
# OBS Studio headless (tests/obs.rs): OBS under Xvfb, Mesa software GL.
command -v obs >/dev/null 2>&1 && compgen -G '/usr/lib/*/obs-plugins/obs-websocket.so' >/dev/null || missing+=(obs-studio)
command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
command -v xdpyinfo >/dev/null 2>&1 || missing+=(x11-utils)
compgen -G '/usr/lib/*/dri/swrast_dri.so' >/dev/null || missing+=(libgl1-mesa-dri)
compgen -G '/usr/lib/*/libEGL.so.1' >/dev/null || missing+=(libegl1)
# Interop (tests/interop.rs): GStreamer publishers (rtmp2sink, librtmp's
# rtmpsink, x264enc, voaacenc) and nginx's stream module as a TLS front.
command -v gst-launch-1.0 >/dev/null 2>&1 || missing+=(gstreamer1.0-tools)
command -v gst-inspect-1.0 >/dev/null 2>&1 && gst-inspect-1.0 rtmp2sink >/dev/null 2>&1 || missing+=(gstreamer1.0-plugins-good gstreamer1.0-plugins-base)
command -v gst-inspect-1.0 >/dev/null 2>&1 && gst-inspect-1.0 rtmpsink >/dev/null 2>&1 && gst-inspect-1.0 voaacenc >/dev/null 2>&1 || missing+=(gstreamer1.0-plugins-bad)
command -v gst-inspect-1.0 >/dev/null 2>&1 && gst-inspect-1.0 x264enc >/dev/null 2>&1 || missing+=(gstreamer1.0-plugins-ugly)
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=(libnginx-mod-stream)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# SRT (tests/srt.rs, crates/srt): libsrt, which antenne loads at run time
# (libsrt.so.1.5); ffmpeg's own SRT support links the same library.
compgen -G '/usr/lib/*/libsrt.so.1.5' >/dev/null || missing+=(libsrt1.5-openssl)
# srt-live-transmit: a silent SRT source (tests/pull/srt.rs).
command -v srt-live-transmit >/dev/null 2>&1 || missing+=(srt-tools)

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "scripts/test.sh: missing test dependencies: ${missing[*]}" >&2
        echo "Install them as root (Debian/Ubuntu):" >&2
        echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "scripts/test.sh: missing ${missing[*]} and no apt-get to install them" >&2
        exit 1
    fi
    echo "==> installing test dependencies: ${missing[*]}"
    # Keep package scripts from starting services (a system nginx on :80):
    # the tests start their own peers. Only if no policy is in place already.
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        own_policy=1
        trap '[ "$own_policy" = 1 ] && rm -f "$policy"' EXIT
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    if [ "$own_policy" = 1 ]; then
        rm -f "$policy"
        own_policy=0
    fi
    [ -f "$RTMP_MODULE" ] || {
        echo "scripts/test.sh: $RTMP_MODULE still missing after install" >&2
        exit 1
    }
fi

command -v cargo >/dev/null 2>&1 || {
    echo "scripts/test.sh: cargo not found (install a Rust toolchain)" >&2
    exit 1
}

if [ "$lint" = 1 ]; then
    echo "==> cargo fmt --all -- --check"
    cargo fmt --all -- --check
    echo "==> cargo clippy --workspace --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets -- -D warnings
fi

echo "==> cargo test --workspace"
cargo test --workspace

if [ "$fuzz" = 1 ]; then
    echo "==> bash scripts/fuzz.sh --smoke"
    bash scripts/fuzz.sh --smoke
fi
