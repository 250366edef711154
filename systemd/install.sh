#!/usr/bin/env bash
# Install fingercount as a systemd service (Raspberry Pi OS Bookworm, 64-bit).
#
#   sudo systemd/install.sh                 install or upgrade, enable and (re)start
#   systemd/install.sh --dry-run            print every step, change nothing
#   systemd/install.sh --destdir /tmp/root  stage the files under a root (no apt,
#                                           no user, no systemctl): packaging and tests
#
# Safe to run again: the venv is upgraded in place, an existing
# /etc/fingercount/config.yaml is kept, the service is restarted.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: install.sh [--dry-run] [--destdir DIR] [--models DIR] [--python PY]
                  [--pip-args "ARGS"] [--no-apt] [--no-start]

  --dry-run        print the steps, change nothing
  --destdir DIR    install below DIR instead of / (skips apt, user, systemctl)
  --models DIR     model packages to ship (default: <checkout>/models)
  --python PY      interpreter for the venv (default: /usr/bin/python3)
  --pip-args ARGS  extra arguments for pip install (e.g. "--no-index --find-links W")
  --no-apt         do not apt-get install python3-picamera2 and friends
  --no-start       install and enable, but do not (re)start the service
EOF
}

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DESTDIR="${DESTDIR:-}"
DRY_RUN=0
APT=1
START=1
PYTHON=/usr/bin/python3
PIP_ARGS=""
MODELS_SRC="$SRC/models"

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --destdir) DESTDIR="${2:?--destdir needs a directory}"; shift ;;
    --destdir=*) DESTDIR="${1#*=}" ;;
    --models) MODELS_SRC="${2:?--models needs a directory}"; shift ;;
    --python) PYTHON="${2:?--python needs an interpreter}"; shift ;;
    --pip-args) PIP_ARGS="${2-}"; shift ;;
    --no-apt) APT=0 ;;
    --no-start) START=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: error: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

DESTDIR="${DESTDIR%/}"
# Fixed locations (edge/config.py searches /usr/share/fingercount/models).
OPT="$DESTDIR/opt/fingercount"
VENV="$OPT/venv"
SHARE="$DESTDIR/usr/share/fingercount"
ETC="$DESTDIR/etc/fingercount"
UNIT_DIR="$DESTDIR/etc/systemd/system"
USER_NAME=fingercount
# A staged root belongs to whoever builds it: no users, packages or services are touched.
LIVE=1
[ -n "$DESTDIR" ] && LIVE=0

say() { echo "install.sh: $*"; }
die() { echo "install.sh: error: $*" >&2; exit 1; }
run() {
  echo "+ $*"
  [ "$DRY_RUN" = 1 ] || "$@"
}

[ -f "$SRC/pyproject.toml" ] || die "$SRC is not a fingercount checkout (no pyproject.toml)"
[ -f "$SRC/systemd/fingercount.service" ] || die "missing $SRC/systemd/fingercount.service"
if [ "$LIVE" = 1 ] && [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
  die "run as root: sudo $0 (or --destdir DIR / --dry-run)"
fi
[ -x "$PYTHON" ] || command -v "$PYTHON" >/dev/null || die "no Python at $PYTHON (apt install python3)"
if [ ! -d "$MODELS_SRC" ] || [ -z "$(ls -A "$MODELS_SRC" 2>/dev/null)" ]; then
  die "no model packages in $MODELS_SRC: build them (make models) or pass --models DIR"
fi

# 1. Debian packages: venv support, the CSI camera stack (libcamera) and lgpio for gpiozero.
if [ "$LIVE" = 1 ] && [ "$APT" = 1 ] && command -v apt-get >/dev/null; then
  pkgs=(python3-venv python3-pip)
  for p in python3-picamera2 python3-lgpio; do
    # Only on Raspberry Pi OS; elsewhere the camera is opencv:/replay: and GPIO is off.
    if apt-cache show "$p" >/dev/null 2>&1; then pkgs+=("$p"); fi
  done
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}"
fi

# 2. A system user that may use the camera and GPIO, nothing else.
if [ "$LIVE" = 1 ]; then
  for g in video gpio; do
    getent group "$g" >/dev/null || run groupadd --system "$g"
  done
  if id "$USER_NAME" >/dev/null 2>&1; then
    run usermod -a -G video,gpio "$USER_NAME"
  else
    run useradd --system --user-group --groups video,gpio --home-dir /var/lib/fingercount \
      --no-create-home --shell /usr/sbin/nologin --comment "fingercount daemon" "$USER_NAME"
  fi
fi

# 3. The venv sees the apt packages (picamera2 is not on PyPI for the Pi's libcamera).
if [ ! -x "$VENV/bin/python" ]; then
  run mkdir -p "$OPT"
  run "$PYTHON" -m venv --system-site-packages "$VENV"
fi

# Keep the numpy the apt camera stack was built against: pip would otherwise pull
# numpy 2 (for the newest opencv wheels) and break picamera2/simplejpeg.
CONSTRAINTS="$OPT/constraints.txt"
sys_numpy="$("$PYTHON" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)"
if [ "$DRY_RUN" = 0 ]; then
  : > "$CONSTRAINTS"
  if [ -n "$sys_numpy" ] && [ "${sys_numpy%%.*}" -lt 2 ]; then
    printf 'numpy==%s\nopencv-python-headless<4.12\n' "$sys_numpy" > "$CONSTRAINTS"
  fi
fi

# 4. The package with the edge extras only: never TensorFlow on the device. pip builds
# in the source tree, so build from a copy: no root-owned build/ left in the checkout.
BUILD="$(mktemp -d)"
trap 'rm -rf "$BUILD"' EXIT
cp -r "$SRC/pyproject.toml" "$SRC/README.md" "$SRC/edge" "$BUILD/"
# shellcheck disable=SC2086
run "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  --constraint "$CONSTRAINTS" $PIP_ARGS "${BUILD}[edge]"
# The package declares both commands; the converter (TensorFlow) is a workstation's, not copied.
run rm -f "$VENV/bin/fingercount-convert"
if [ "$DRY_RUN" = 0 ] && compgen -G "$VENV/lib/python3*/site-packages/tensorflow" >/dev/null; then
  die "TensorFlow ended up in $VENV; the device needs only the edge extras"
fi

# 5. Models where the package finds them; replaced as a whole so no half-copied model is seen.
run mkdir -p "$SHARE"
run rm -rf "$SHARE/models.new" "$SHARE/models.old"
run cp -rL "$MODELS_SRC" "$SHARE/models.new"
if [ -d "$SHARE/models" ]; then run mv "$SHARE/models" "$SHARE/models.old"; fi
run mv "$SHARE/models.new" "$SHARE/models"
run rm -rf "$SHARE/models.old"
run mkdir -p "$OPT/share/doc"
if [ -f "$SRC/docs/raspberry-pi.md" ]; then run cp "$SRC/docs/raspberry-pi.md" "$OPT/share/doc/raspberry-pi.md"; fi

# 6. Configuration: written once, never overwritten; the example is refreshed beside it.
run mkdir -p "$ETC"
run install -m 0644 "$SRC/systemd/config.example.yaml" "$ETC/config.example.yaml"
if [ -e "$ETC/config.yaml" ]; then
  say "keeping existing $ETC/config.yaml"
else
  run install -m 0640 "$SRC/systemd/config.example.yaml" "$ETC/config.yaml"
fi
if [ "$LIVE" = 1 ]; then
  # Readable by the service (the file may hold an MQTT password), writable only by root.
  run chown root:"$USER_NAME" "$ETC" "$ETC/config.yaml"
  run chmod 0750 "$ETC"
  # run() echoes on stdout, so its line would go to /dev/null with the command's output
  echo "+ runuser -u $USER_NAME -- $VENV/bin/fingercount check-config --config /etc/fingercount/config.yaml"
  if [ "$DRY_RUN" != 1 ]; then
    # exit 2: the file itself is wrong (stop here); exit 1: a check failed (the camera or the
    # broker is not reachable yet): say which and go on, the service retries them.
    rc=0
    out=$(runuser -u "$USER_NAME" -- "$VENV/bin/fingercount" check-config --config /etc/fingercount/config.yaml) || rc=$?
    printf '%s\n' "$out" | sed -n '/^checks:/,$p'
    [ "$rc" = 2 ] && die "/etc/fingercount/config.yaml is not valid (see above); fix it and run install.sh again"
    [ "$rc" = 0 ] || say "warning: some checks failed (above); the service starts anyway and keeps retrying the camera and the broker"
  fi
fi

# 7. The unit.
run mkdir -p "$UNIT_DIR"
run install -m 0644 "$SRC/systemd/fingercount.service" "$UNIT_DIR/fingercount.service"
run install -m 0755 "$SRC/systemd/uninstall.sh" "$OPT/uninstall.sh"

if [ "$LIVE" = 1 ]; then
  run systemctl daemon-reload
  run systemctl enable fingercount.service
  if [ "$START" = 1 ]; then
    # restart, not start: re-running the installer upgrades a running service.
    run systemctl restart fingercount.service
    [ "$DRY_RUN" = 1 ] || systemctl --no-pager --lines=5 status fingercount.service || true
  fi
  if [ "$DRY_RUN" = 1 ]; then
    say "dry run: nothing was changed"
  else
    say "done. Logs: journalctl -u fingercount -f    Config: /etc/fingercount/config.yaml"
  fi
else
  say "staged into $DESTDIR (no users, packages or services touched)"
fi
