#!/usr/bin/env bash
# make test-arm64: the edge package on aarch64, under qemu-user, offline.
#
# A Debian bookworm arm64 root filesystem (mmdebstrap, Debian's packages) is run through
# qemu-user-static (binfmt). The `edge` extra is installed inside from aarch64 wheels that
# `pip download --platform …` fetched on the host, then fingercount from a wheel built here;
# tools/arm64/checks.py then runs the real commands inside and compares them with x86.
#
#   tools/arm64/run.sh                     everything; exit status non-zero on any failure
#   ARM64_CACHE=DIR tools/arm64/run.sh     cache of the root filesystem and wheels
#                                          (default ~/.cache/fingercount-arm64)
#   ARM64_KEEP=1 tools/arm64/run.sh        keep the work directory: mosquitto log, cpuinfo, the
#                                          fingercount wheel build (the board is a tmpfs: unmounted)
#   ARM64_FACTS=1 tools/arm64/run.sh       also re-measure the qemu facts (docs/arm64.md)
#
# Needs root (chroot, mount). Emulated timings are not Raspberry Pi timings.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PY:-$SRC/.venv/bin/python}"          # the x86 side: the developer venv (make setup)
# absolute, but not through the symlink: the venv is what matters
[ -e "$PY" ] && PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"
CACHE="${ARM64_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fingercount-arm64}"
SUITE=bookworm                               # Raspberry Pi OS 12 is bookworm: Python 3.11
PYVER=3.11
QEMU_CPU_MODEL=cortex-a72                     # Pi 4; qemu's default "max" gets int8 wrong
# essential has no libstdc++6 (numpy, OpenCV and the interpreter need it): included.
INCLUDE=libstdc++6,python3,python3-venv
# Every dpkg step runs emulated: leave out what no check reads. The CA certificates too:
# update-ca-certificates runs ~400 emulated processes, and the board installs offline.
DPKG_OPTS=(--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*'
           --dpkgopt='path-exclude=/usr/share/locale/*'
           --dpkgopt='path-exclude=/usr/share/ca-certificates/*')
T0=$(date +%s)

say() { echo "arm64: $*"; }
die() { echo "arm64: error: $*" >&2; exit 2; }
phase() { # phase NAME START: one line with the seconds a phase took, for notes/arm64.md
  say "phase $1: $(( $(date +%s) - $2 )) s"
}

WORK=""
ROOT=""
BROKER_PID=""
CHILD=""    # the long-running command now (a trapped signal is forwarded to it)
MOUNTS=()   # in mount order; undone in reverse

mounted_below() { # mount points at or below $1, deepest first
  awk -v r="$1" '{ p = $2; gsub(/\\040/, " ", p); if (p == r || index(p, r "/") == 1) print p }' \
    /proc/self/mounts | sort -r
}

stop_pid() { # TERM, then KILL after $2 seconds (default 10)
  local pid=$1 n=0 limit=$(( ${2:-10} * 10 ))
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null && [ $n -lt $limit ]; do sleep 0.1; n=$((n + 1)); done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

inside_pids() { # processes whose root directory is the board's (started by these checks)
  local d
  for d in /proc/[0-9]*; do
    [ "$(readlink "$d/root" 2>/dev/null)" = "$ROOT" ] && echo "${d#/proc/}"
  done
  return 0
}

cleanup() {
  local rc=$? m left i pids
  trap - EXIT INT TERM
  [ -n "$CHILD" ] && stop_pid "$CHILD" 20   # checks.py gives its commands 10 s
  [ -n "$BROKER_PID" ] && stop_pid "$BROKER_PID"
  [ -n "$ROOT" ] || exit "$rc"
  # Nothing started inside may outlive the run (nor keep its mounts busy).
  pids="$(inside_pids)"
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true; sleep 2
    pids="$(inside_pids)"
    # shellcheck disable=SC2086
    [ -n "$pids" ] && { kill -KILL $pids 2>/dev/null || true; sleep 0.5; }
  fi
  for (( i=${#MOUNTS[@]}-1; i>=0; i-- )); do
    umount -R "${MOUNTS[$i]}" 2>/dev/null || umount -R -l "${MOUNTS[$i]}" 2>/dev/null || true
  done
  # anything still mounted below the root (a mount made by a command inside): lazily
  while read -r m; do
    [ -n "$m" ] && { umount -R "$m" 2>/dev/null || umount -R -l "$m" 2>/dev/null || true; }
  done < <(mounted_below "$ROOT")
  left="$(mounted_below "$ROOT")"
  if [ -n "$left" ]; then
    echo "arm64: error: still mounted, $WORK left in place: $left" >&2
    rc=1
  elif [ "${ARM64_KEEP:-0}" = 1 ]; then
    say "kept $WORK (nothing mounted)"
  else
    # --one-file-system: even a mount missed above would not be descended into
    rm -rf --one-file-system "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "arm64: interrupted" >&2; exit 130' INT
trap 'echo "arm64: terminated" >&2; exit 143' TERM

bg() { # run a long command so that a signal to this script is handled at once
  "$@" &
  CHILD=$!
  local rc=0
  wait "$CHILD" || rc=$?
  CHILD=""
  return "$rc"
}

if [ "$(id -u)" != 0 ]; then
  # CI runners often are a user with password-less sudo: use it rather than fail.
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    exec sudo -n env PY="$PY" ARM64_CACHE="$CACHE" ARM64_KEEP="${ARM64_KEEP:-0}" \
      ARM64_FACTS="${ARM64_FACTS:-0}" "$0" "$@"
  fi
  die "needs root (chroot and mount): sudo make test-arm64"
fi
[ -x "$PY" ] || die "no x86 venv at $PY: run make setup first (or PY=/path/to/python)"

# 1. Host tools: Debian's qemu-user-static, mmdebstrap, arch-test (installed when missing).
need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v arch-test >/dev/null || need+=(arch-test)
[ -x /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static binfmt-support)
command -v update-binfmts >/dev/null || need+=(binfmt-support)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing ${need[*]} and no apt-get to install them"
  say "installing ${need[*]} (Debian packages)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
     "${need[@]}") >/dev/null
fi

# 2. binfmt: aarch64 ELF files run through qemu (F flag: the interpreter is opened now,
# so it need not exist inside the chroot).
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
fi
if ! grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null; then
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
fi
if ! grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null; then
  # No binfmt-support service (containers): register Debian's qemu-aarch64 entry by hand.
  printf '%s' ':qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F' \
    > /proc/sys/fs/binfmt_misc/register 2>/dev/null || true
fi
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null \
  || die "cannot register qemu-aarch64 with binfmt_misc (update-binfmts --enable qemu-aarch64)"
arch-test arm64 >/dev/null || die "arch-test arm64 fails: aarch64 binaries do not run here"
qemu_version="$(qemu-aarch64-static --version | head -1)"
say "$qemu_version, QEMU_CPU=$QEMU_CPU_MODEL; host $(uname -m), $(nproc) cores"

mkdir -p "$CACHE"

# 3. The root filesystem, cached as a tarball keyed by what made it.
t=$(date +%s)
ROOTFS_KEY="$(printf '%s\n' "$SUITE" arm64 essential "$INCLUDE" "${DPKG_OPTS[@]}" | sha256sum | cut -c1-16)"
ROOTFS_TAR="$CACHE/rootfs-$SUITE-arm64-$ROOTFS_KEY.tar"
if [ -s "$ROOTFS_TAR" ]; then
  say "root filesystem: cached $ROOTFS_TAR"
else
  say "root filesystem: mmdebstrap --arch=arm64 --variant=essential --include=$INCLUDE $SUITE"
  rm -f "$ROOTFS_TAR.part"
  bg nice mmdebstrap --quiet --arch=arm64 --variant=essential --include="$INCLUDE" "${DPKG_OPTS[@]}" \
    --format=tar "$SUITE" "$ROOTFS_TAR.part"
  mv "$ROOTFS_TAR.part" "$ROOTFS_TAR"
fi
phase rootfs "$t"

# 4. aarch64 wheels of the edge dependencies, read from pyproject.toml (dependencies + the
# edge extra + the build backend for install.sh), cached by that list.
t=$(date +%s)
mapfile -t REQS < <("$PY" "$SRC/tools/arm64/requirements.py" "$SRC/pyproject.toml" --python "$PYVER")
[ ${#REQS[@]} -gt 0 ] || die "no edge requirements read from pyproject.toml"
WHEELS_KEY="$(printf '%s\n' "$PYVER" "${REQS[@]}" | sha256sum | cut -c1-16)"
WHEELS="$CACHE/wheels-cp${PYVER/./}-aarch64-$WHEELS_KEY"
if [ -f "$WHEELS/.complete" ]; then
  say "wheels: cached $WHEELS"
else
  say "wheels: pip download (aarch64, cp${PYVER/./}) ${REQS[*]}"
  rm -rf "$WHEELS.part"
  bg "$PY" -m pip download --quiet --disable-pip-version-check --dest "$WHEELS.part" \
    --platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 \
    --platform manylinux_2_27_aarch64 --platform manylinux_2_17_aarch64 \
    --only-binary=:all: --python-version "$PYVER" --implementation cp "${REQS[@]}" \
    2> "$CACHE/pip-download.log" || { tail -20 "$CACHE/pip-download.log" >&2; die "pip download failed"; }
  touch "$WHEELS.part/.complete"
  rm -rf "$WHEELS"; mv "$WHEELS.part" "$WHEELS"
fi
phase download "$t"

# 5. A work directory with the root filesystem; every mount below it is undone on exit,
# also on Ctrl-C and SIGTERM, before anything is deleted.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fingercount-arm64.XXXXXX")"
ROOT="$WORK/root"

t=$(date +%s)
mkdir -p "$ROOT"
# The board lives in memory (~1 GB with both venvs): no disk writes to wait for on a busy
# machine, and unmounting it is the whole clean-up.
mount -t tmpfs -o mode=0755,size=${ARM64_TMPFS_SIZE:-4g} tmpfs "$ROOT"; MOUNTS+=("$ROOT")
tar -C "$ROOT" -xf "$ROOTFS_TAR"

# The checkout (no venv, no git) and the wheels, copied in: nothing of the host is written.
mkdir -p "$ROOT/src" "$ROOT/wheels" "$ROOT/fcwheel"
tar -C "$SRC" --exclude=./.venv --exclude=./.git --exclude='*.egg-info' --exclude=./build \
    --exclude=__pycache__ --exclude=./demo-state -cf - . | tar -C "$ROOT/src" -xf -
cp "$WHEELS"/*.whl "$ROOT/wheels/"
# fingercount itself: pure Python, built here from a copy (no build/ left in the checkout).
BUILD="$WORK/build"
mkdir -p "$BUILD"
cp -r "$SRC/pyproject.toml" "$SRC/README.md" "$SRC/edge" "$SRC/converter" "$BUILD/"
"$PY" -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$ROOT/fcwheel" "$BUILD" \
  > "$WORK/pip-wheel.log" 2>&1 || { tail -20 "$WORK/pip-wheel.log" >&2; die "pip wheel of the checkout failed"; }

# A Pi 4 /proc/cpuinfo, one block per host processor: qemu 7.2 shows the host's x86 one,
# on which ai-edge-litert's cpuinfo library segfaults; it must name the CPU qemu emulates.
NPROC="$(nproc --all)"
CPUINFO="$WORK/cpuinfo"
for (( i=0; i<NPROC; i++ )); do
  printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$i"
  printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
done > "$CPUINFO"
printf 'Hardware\t: BCM2835\nRevision\t: c03111\nModel\t\t: qemu-user %s (a Raspberry Pi 4 style cpuinfo for make test-arm64)\n' \
  "$QEMU_CPU_MODEL" >> "$CPUINFO"

mount -t proc proc "$ROOT/proc"; MOUNTS+=("$ROOT/proc")
mount --bind "$CPUINFO" "$ROOT/proc/cpuinfo"; MOUNTS+=("$ROOT/proc/cpuinfo")
# sysfs: the interpreter reads the CPUs present there; edge/machine.py the kernel's CPU type.
mount --bind /sys "$ROOT/sys"; MOUNTS+=("$ROOT/sys")
mount -o remount,bind,ro "$ROOT/sys" 2>/dev/null || true
mount --bind /dev "$ROOT/dev"; MOUNTS+=("$ROOT/dev")
mount -t tmpfs -o mode=1777 tmpfs "$ROOT/dev/shm"; MOUNTS+=("$ROOT/dev/shm")
mount -t tmpfs -o mode=1777,size=1g tmpfs "$ROOT/tmp"; MOUNTS+=("$ROOT/tmp")
phase unpack "$t"

# 6. A broker on the host, on a free loopback port: the chroot shares the network.
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
MOSQ="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$PORT" > "$WORK/mosquitto.conf"
"$MOSQ" -c "$WORK/mosquitto.conf" > "$WORK/mosquitto.log" 2>&1 &
BROKER_PID=$!

# 7. The checks (they print one line each and the closing count).
say "setup took $(( $(date +%s) - T0 )) s"
rc=0
FC_SRC="$SRC" bg "$PY" "$SRC/tools/arm64/checks.py" --root "$ROOT" --work "$WORK" \
  --qemu-cpu "$QEMU_CPU_MODEL" --mqtt-port "$PORT" --qemu-version "$qemu_version" || rc=$?
say "total $(( $(date +%s) - T0 )) s (cores shared with other work make this pessimistic)"
exit "$rc"
