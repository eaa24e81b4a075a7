#!/usr/bin/env bash
# Install the non-Python tools that tests/export/ runs the exported files with.
#
# * runit: Debian's runit package is *downloaded and unpacked*, not installed
#   (installing it would register services and hooks on the machine).  Its
#   binaries (runsv, runsvdir, sv, chpst, svlogd) end up in
#   $CORRAL_RUNIT_ROOT/usr/bin (default /opt/corral-test/runit/usr/bin), which
#   is where tests/export/ looks for them.
# * systemd-analyze (for `systemd-analyze verify`): comes with the Debian 12
#   image; installed from Debian only if missing.
#
# Idempotent, needs root and no stdin; safe to run on every CI run.  The Python
# test tools (supervisor, check-jsonschema, kubernetes-validate, pyyaml) come
# from pyproject's `test` extra, not from here.
set -euo pipefail

RUNIT_ROOT="${CORRAL_RUNIT_ROOT:-/opt/corral-test/runit}"
export DEBIAN_FRONTEND=noninteractive

apt_updated=0
apt_update_once() {
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq </dev/null
        apt_updated=1
    fi
}

if [ -x "$RUNIT_ROOT/usr/bin/runsv" ] && [ -x "$RUNIT_ROOT/usr/bin/chpst" ] \
    && [ -x "$RUNIT_ROOT/usr/bin/sv" ] && [ -x "$RUNIT_ROOT/usr/bin/svlogd" ]; then
    echo "setup-export: runit already unpacked in $RUNIT_ROOT"
else
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    # let apt's sandbox user write there (else apt warns and downloads as root)
    chown _apt "$work" 2>/dev/null || true
    (
        cd "$work"
        if ! apt-get download -qq runit </dev/null; then
            apt_update_once
            apt-get download -qq runit </dev/null
        fi
    )
    rm -rf "$RUNIT_ROOT.tmp"
    mkdir -p "$RUNIT_ROOT.tmp"
    dpkg -x "$work"/runit_*.deb "$RUNIT_ROOT.tmp"
    rm -rf "$RUNIT_ROOT"
    mv "$RUNIT_ROOT.tmp" "$RUNIT_ROOT"
    echo "setup-export: runit unpacked in $RUNIT_ROOT"
fi
ls "$RUNIT_ROOT/usr/bin"

if ! command -v systemd-analyze >/dev/null 2>&1; then
    apt_update_once
    apt-get install -y -qq --no-install-recommends systemd </dev/null
fi
systemd-analyze --version | head -n 1
