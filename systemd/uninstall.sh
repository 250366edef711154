#!/usr/bin/env bash
# Remove the fingercount service installed by systemd/install.sh.
#
#   sudo systemd/uninstall.sh           stop and remove the service, venv and models;
#                                       keep /etc/fingercount and /var/lib/fingercount
#   sudo systemd/uninstall.sh --purge   also delete config, samples, heads and the user
#   --dry-run / --destdir DIR           as for install.sh
set -euo pipefail

DESTDIR="${DESTDIR:-}"
DRY_RUN=0
PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --purge) PURGE=1 ;;
    --destdir) DESTDIR="${2:?--destdir needs a directory}"; shift ;;
    --destdir=*) DESTDIR="${1#*=}" ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "uninstall.sh: error: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
DESTDIR="${DESTDIR%/}"
LIVE=1
[ -n "$DESTDIR" ] && LIVE=0

run() {
  echo "+ $*"
  [ "$DRY_RUN" = 1 ] || "$@"
}

if [ "$LIVE" = 1 ] && [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
  echo "uninstall.sh: error: run as root: sudo $0" >&2
  exit 1
fi

if [ "$LIVE" = 1 ] && command -v systemctl >/dev/null; then
  # SIGTERM: the daemon publishes offline and flushes its outbox before it exits.
  run systemctl disable --now fingercount.service || true
fi
run rm -f "$DESTDIR/etc/systemd/system/fingercount.service"
[ "$LIVE" = 1 ] && command -v systemctl >/dev/null && run systemctl daemon-reload
run rm -rf "$DESTDIR/opt/fingercount" "$DESTDIR/usr/share/fingercount"

if [ "$PURGE" = 1 ]; then
  run rm -rf "$DESTDIR/etc/fingercount" "$DESTDIR/var/lib/fingercount"
  if [ "$LIVE" = 1 ] && id fingercount >/dev/null 2>&1; then run userdel fingercount; fi
  if [ "$LIVE" = 1 ]; then
    echo "uninstall.sh: removed fingercount, its configuration, samples and user"
  else  # a --destdir staging root: there is no user to remove
    echo "uninstall.sh: removed fingercount, its configuration and samples from $DESTDIR"
  fi
else
  echo "uninstall.sh: removed fingercount; kept $DESTDIR/etc/fingercount and $DESTDIR/var/lib/fingercount (--purge deletes them)"
fi
