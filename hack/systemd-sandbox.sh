#!/usr/bin/env bash
# systemd-sandbox.sh - a REAL systemd for tests, on a host whose PID 1 is not systemd.
#
# Adapted from the team recipe shared/recipes/systemd-sandbox.sh ("systemd-sandbox.sh - give
# tests a REAL systemd on a host whose PID 1 is not systemd"); this copy belongs to the project
# so that people without shared/ have it. Changes: per-sandbox state dir and cgroup, a registry
# so that `gc` finds sandboxes left by killed tests, an owner pid that stops the sandbox when it
# dies, `stop` that always cleans up, a `check` preflight, PID 1 logging to the journal.
#
#   systemd-sandbox.sh check          can this machine run a sandbox? exit 0, or 3 and the reason
#   systemd-sandbox.sh start          boot systemd --system as PID 1 of private namespaces
#   systemd-sandbox.sh env            print host-side env: system bus address, unit dir, init pid (/proc/PID/root)
#   systemd-sandbox.sh exec CMD...    run CMD inside it (system bus, /etc/systemd/system: stock paths)
#   systemd-sandbox.sh stop [--kill]  power it off (or SIGKILL it) and remove every trace (idempotent;
#                                     fine after a failed start)
#   systemd-sandbox.sh gc             remove every registered sandbox whose init is gone, or whose owner is
#   MODE=user systemd-sandbox.sh ...  fallback: confined `systemd --user` (session bus, no namespaces)
#
# Environment:
#   SDTEST_DIR        state dir (default /tmp/systemd-sandbox-$MODE); one per sandbox, removed by stop
#   SDTEST_CGROUP     name of the private cgroup (default sdtest-<basename of SDTEST_DIR>), unique too
#   SDTEST_SHARE      space-separated host dirs bind-mounted rw at the same path inside (default $PWD);
#                     $SDTEST_DIR/share is always shared too (the guest's /tmp is a fresh tmpfs)
#   SDTEST_OWNER_PID  when set, a watcher stops the sandbox once that process is gone (tests: the test binary)
#   SDTEST_REGISTRY   where running sandboxes are registered for gc (default /run/systemd-sandbox)
#   SDTEST_STOP_TIMEOUT  seconds stop waits for the power-off before it kills (default 5)
#
# The guest root is overlayfs(lower=host /, upper=tmpfs): it sees the host's files (Go toolchain, module
# cache, ...) at the same paths, but its writes vanish at stop. It has its own pid/mount/net(lo only)/uts/ipc
# namespaces and only a delegated cgroup2 subtree. Host processes reach it through /proc/<init pid>/root.
# Exit status: 0 ok, 1 failure, 2 usage, 3 this machine cannot run a sandbox (tests skip on 3).
set -euo pipefail
SELF=$(readlink -f "$0")
MODE=${MODE:-system}
case "$MODE" in system|user) ;; *) echo "systemd-sandbox: MODE must be system or user" >&2; exit 2 ;; esac
B=${SDTEST_DIR:-/tmp/systemd-sandbox-$MODE}   # all state lives here
B=${B%/}
CG=${SDTEST_CGROUP:-sdtest-$(basename "$B")}  # private cgroup (never run systemd in the root cgroup)
SHARE=${SDTEST_SHARE-$PWD}
REG=${SDTEST_REGISTRY:-/run/systemd-sandbox}
GUEST_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

die() { echo "systemd-sandbox: $*" >&2; exit 1; }
recorded() { (. "$B/sandbox.env" 2>/dev/null; eval "echo \"\${$1:-}\""); }
unsupported() { echo "systemd-sandbox: unsupported here: $*" >&2; exit 3; }
case "$B" in /*) ;; *) die "SDTEST_DIR must be absolute: $B" ;; esac
[[ "$B" =~ ^[A-Za-z0-9/._+-]+$ ]] || die "SDTEST_DIR may only hold [A-Za-z0-9/._+-]: $B"
# every command but start works on the sandbox recorded in the state dir, whatever MODE/SDTEST_CGROUP say
if [ "${1:-}" != start ] && [ -f "$B/sandbox.env" ]; then
  MODE=$(recorded MODE); CG=$(recorded CG)
fi
[[ "$CG" =~ ^[A-Za-z0-9._-]+$ ]] || die "SDTEST_CGROUP may only hold [A-Za-z0-9._-]: $CG"

# cgroup dirs to put the manager in: the cgroup2 tree (+ name=systemd on hybrid)
cg_root2() { if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo /sys/fs/cgroup; else echo /sys/fs/cgroup/unified; fi; }
cg_roots() {
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo /sys/fs/cgroup
  else echo /sys/fs/cgroup/unified; [ -d /sys/fs/cgroup/systemd ] && echo /sys/fs/cgroup/systemd; fi; true; }
cg_dirs() { local r o=""; for r in $(cg_roots); do o="$o $r/$1"; done; echo $o; }
cg_populated() { # any process left anywhere under cgroup $1?
  local d; for d in $(cg_dirs "$1"); do
    [ -d "$d" ] && find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | grep -q . && return 0
  done; return 1; }
cg_remove() { # kill what is left in cgroup $1, wait for it to empty, remove it
  local d i; d=$(cg_root2)/$1
  [ -f "$d/cgroup.kill" ] && echo 1 > "$d/cgroup.kill" 2>/dev/null || true
  for d in $(cg_dirs "$1"); do
    [ -d "$d" ] && find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
  done
  for i in $(seq 200); do cg_populated "$1" || break; sleep 0.025; done
  for d in $(cg_dirs "$1"); do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; done
  for d in $(cg_dirs "$1"); do [ ! -d "$d" ] || { echo "systemd-sandbox: cannot remove cgroup $d" >&2; return 1; }; done
}

# pids are recorded with their start time (field 22 of /proc/PID/stat) so that a reused pid is never
# taken for ours: pid_max is small (32768) on some machines.
pid_start() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; set -- $s
  [ "$1" != Z ] || return 1; echo "${20}"; }
rec_pid() { echo "$2 $(pid_start "$2" || echo 0)" > "$1"; }
rec_alive() { local p s; [ -f "$1" ] || return 1; read -r p s < "$1" || true
  [ -n "$p" ] && [ "$(pid_start "$p" 2>/dev/null)" = "$s" ]; }
rec_pid_of() { local p s; [ -f "$1" ] && read -r p s < "$1" && echo "$p"; true; }
ms() { echo $(( ($(date +%s%N) - t0) / 1000000 )); }

# A sandbox is alive while its manager (or the start that is booting it) runs, and its owner, if it
# has one, too: a sandbox whose owner and watcher were both killed is an orphan that gc stops.
sandbox_alive() {
  if [ -f "$1/owner.pid" ] && ! rec_alive "$1/owner.pid"; then return 1; fi
  rec_alive "$1/init.pid" || rec_alive "$1/user.pid" || rec_alive "$1/starter.pid"; }

preflight() {
  [ "$(id -u)" = 0 ] || unsupported "needs root (uid $(id -u))"
  local c; for c in unshare nsenter setsid pgrep mount systemctl journalctl; do
    command -v "$c" >/dev/null || unsupported "no $c"; done
  [ -x /lib/systemd/systemd ] || unsupported "no /lib/systemd/systemd (apt-get install systemd)"
  [ -f "$(cg_root2)/cgroup.controllers" ] || unsupported "no cgroup2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified"
  [ -w "$(cg_root2)" ] || unsupported "cgroup2 root $(cg_root2) not writable"
  if [ "$MODE" = system ]; then
    command -v dbus-daemon >/dev/null || unsupported "no dbus-daemon (apt-get install dbus)"
    command -v pivot_root >/dev/null || unsupported "no pivot_root"
    # the namespaces and mounts the sandbox needs, tried for real
    local t out; t=$(mktemp -d /tmp/sdtest-check.XXXXXX)
    if ! out=$(unshare --pid --fork --mount --uts --ipc --net --propagation private sh -c '
        mount -t tmpfs tmpfs "$1" && mkdir "$1/u" "$1/w" "$1/r" &&
        mount -t overlay overlay -o "lowerdir=/,upperdir=$1/u,workdir=$1/w" "$1/r" &&
        test -x "$1/r/lib/systemd/systemd"' sh "$t" 2>&1); then
      rmdir "$t" 2>/dev/null || true; unsupported "namespaces/overlayfs: ${out:-failed}"; fi
    rmdir "$t"
  else
    command -v dbus-daemon >/dev/null || unsupported "no dbus-daemon (apt-get install dbus-user-session)"
    unshare --mount true 2>/dev/null || unsupported "cannot unshare a mount namespace"
  fi
}

# Take the state dir and cgroup for a new sandbox, cleaning what a dead one left there.
claim() {
  mkdir -p "$REG"
  local other; other=$(readlink "$REG/$CG" 2>/dev/null || true)
  if [ -n "$other" ] && [ "$other" != "$B" ]; then
    if [ -f "$other/sandbox.env" ] && sandbox_alive "$other"; then die "cgroup name $CG is in use by the sandbox in $other"; fi
    SDTEST_DIR=$other SDTEST_CGROUP=$CG "$SELF" stop || true
  fi
  if [ -f "$B/sandbox.env" ]; then
    sandbox_alive "$B" && die "a sandbox is already running in $B (stop it first)"
    echo "systemd-sandbox: cleaning up a stale sandbox in $B" >&2
    SDTEST_DIR=$B "$SELF" stop || true
  fi
  if cg_populated "$CG"; then die "cgroup $CG still has processes and no live sandbox owns it: $(cg_dirs "$CG")"; fi
  # from here on, whatever makes start fail, nothing stays behind
  trap 'stop_sandbox --kill >/dev/null 2>&1 || true' EXIT; trap 'exit 1' INT TERM HUP
  cg_remove "$CG"
  mkdir -p "$B"; rm -rf --one-file-system "$B/ovl" "$B/root"
  printf 'MODE=%s\nCG=%s\nB=%s\n' "$MODE" "$CG" "$B" > "$B/sandbox.env"
  rec_pid "$B/starter.pid" $$
  ln -sfn "$B" "$REG/$CG"
  : > "$B/console.log"
  mkdir -p "$B/share"; [ "$MODE" = user ] || mkdir -p "$B/ovl" "$B/root"
  local d; for d in $(cg_dirs "$CG"); do mkdir -p "$d"; done
  start_watcher
}

# Stop the sandbox once the owner (a test binary) is gone, even if it was killed.
start_watcher() {
  [ -n "${SDTEST_OWNER_PID:-}" ] || return 0
  local st; st=$(pid_start "$SDTEST_OWNER_PID") || die "owner pid $SDTEST_OWNER_PID is not running"
  echo "$SDTEST_OWNER_PID $st" > "$B/owner.pid"
  SDTEST_DIR=$B SDTEST_CGROUP=$CG MODE=$MODE setsid "$SELF" _watch "$SDTEST_OWNER_PID" "$st" \
    </dev/null >/dev/null 2>&1 &
  rec_pid "$B/watcher.pid" $!
}

watch_owner() { # _watch PID STARTTIME
  while [ "$(pid_start "$1" 2>/dev/null)" = "$2" ]; do
    [ -f "$B/sandbox.env" ] || exit 0; sleep 0.5; done
  [ -f "$B/sandbox.env" ] || exit 0
  exec "$SELF" stop --kill
}

start_system() {
  local s
  cat > "$B/init.sh" <<INIT
set -eu
for d in $(cg_dirs "$CG"); do echo 0 > \$d/cgroup.procs; done
R=$B/root
mount -t tmpfs -o mode=755 tmpfs $B/ovl; mkdir $B/ovl/upper $B/ovl/work
mount -t overlay overlay -o lowerdir=/,upperdir=$B/ovl/upper,workdir=$B/ovl/work \$R
mount -t proc proc \$R/proc
mount --bind \$R/proc/sys \$R/proc/sys; mount -o remount,bind,ro \$R/proc/sys
mount --bind /sys \$R/sys; mount -o remount,bind,ro \$R/sys
# ONLY the cgroup2 tree. Never give the guest the host's /sys/fs/cgroup tmpfs: its mount_setup()
# does MS_REMOUNT|MS_RDONLY there, flipping the HOST superblock read-only, and it would mount
# new v1 hierarchies (hugetlb, perf_event, net_cls) kernel-wide.
mount --bind $(cg_root2) \$R/sys/fs/cgroup
mount -t tmpfs -o mode=755,nosuid tmpfs \$R/dev
for d in null zero full random urandom tty; do touch \$R/dev/\$d; mount --bind /dev/\$d \$R/dev/\$d; done
mkdir \$R/dev/pts \$R/dev/shm \$R/dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts \$R/dev/pts
ln -s pts/ptmx \$R/dev/ptmx; ln -s /proc/self/fd \$R/dev/fd
# keep PID1 off the host console (it only writes a console that is a tty: its log goes to the journal)
touch \$R/dev/console; mount --bind $B/console.log \$R/dev/console
mount -t tmpfs -o mode=1777 tmpfs \$R/dev/shm
mount -t tmpfs -o mode=755 tmpfs \$R/run
mount -t tmpfs -o mode=1777 tmpfs \$R/tmp
for s in $SHARE $B/share; do [ "\$s" = / ] && continue; mkdir -p \$R\$s; mount --bind \$s \$R\$s; done
mkdir -p \$R/etc/systemd/system \$R/etc/tmpfiles.d
# Nothing in the guest may act kernel-wide or on host files: no module loading, no remounts, and
# no 'D /tmp' clean-up at boot (shared dirs may live under /tmp).
# The host's periodic jobs (apt-daily, man-db, e2scrub, ...) stay off too.
for u in systemd-modules-load.service modprobe@.service systemd-remount-fs.service \
    \$(cd \$R && ls etc/systemd/system/timers.target.wants lib/systemd/system/timers.target.wants 2>/dev/null | grep '\\.timer\$'); do
  ln -sfn /dev/null \$R/etc/systemd/system/\$u; done
ln -sfn /dev/null \$R/etc/tmpfiles.d/tmp.conf
# boot a minimal target: the host's own enabled services (postgresql, dnsmasq, ...) stay down
printf '[Unit]\nDescription=sdtest\nRequires=basic.target dbus.socket\nAfter=basic.target dbus.socket\nAllowIsolate=yes\n' \
  > \$R/etc/systemd/system/sdtest.target
cd \$R; mkdir -p .oldroot; pivot_root . .oldroot; umount -l /.oldroot; rmdir /.oldroot || true
exec env -i container=sdtest PATH=$GUEST_PATH \
  /lib/systemd/systemd --unit=sdtest.target --log-target=journal systemd.show_status=0
INIT
  t0=$(date +%s%N)
  setsid unshare --pid --fork --kill-child --mount --uts --ipc --net --propagation private sh "$B/init.sh" \
    </dev/null >"$B/unshare.log" 2>&1 &
  rec_pid "$B/unshare.pid" $!
  local U=$! P=""
  for _ in $(seq 500); do
    P=$(pgrep -P "$U" | head -1 || true); [ -n "$P" ] && break
    pid_start "$U" >/dev/null || break; sleep 0.01; done
  [ -n "$P" ] || fail_start "unshare did not start the sandbox init"
  rec_pid "$B/init.pid" "$P"
  for _ in $(seq 1500); do   # 30 s
    kill -0 "$P" 2>/dev/null || fail_start "the sandbox init (pid $P) exited"
    s=$(nsenter -t "$P" -a systemctl is-system-running 2>/dev/null || true)
    [ "$s" = running ] || [ "$s" = degraded ] && break; sleep 0.02
  done
  [ "$s" = running ] || [ "$s" = degraded ] || fail_start "systemd did not come up (state '$s')"
  [ "$s" = running ] || { echo "systemd-sandbox: warning: state $s; failed units:" >&2
    nsenter -t "$P" -a systemctl --failed --no-legend --no-pager >&2 || true; }
  rm -f "$B/starter.pid"
  echo "systemd --system up as host pid $P, state=$s, in $(ms) ms (SDTEST_DIR=$B SDTEST_CGROUP=$CG)"
}

fail_start() {
  echo "systemd-sandbox: $*" >&2
  local P; P=$(rec_pid_of "$B/init.pid")
  { echo "--- unshare.log"; cat "$B/unshare.log" 2>/dev/null
    if [ -n "$P" ] && [ -d "/proc/$P/root/run/log/journal" ]; then
      echo "--- journal"; journalctl --root="/proc/$P/root" -b --no-pager -q 2>/dev/null | tail -40
    fi; } >&2 || true
  stop_sandbox --kill; exit 1
}

start_user() {
  mkdir -p "$B/config/systemd/user"; mkdir -p -m 0700 "$B/run"
  export XDG_RUNTIME_DIR=$B/run XDG_CONFIG_HOME=$B/config XDG_DATA_HOME=$B/data XDG_STATE_HOME=$B/state XDG_CACHE_HOME=$B/cache
  t0=$(date +%s%N)
  # own cgroup first: a user manager started in the root cgroup migrates EVERY host process
  # (PID 1 included, in cpu/memory/pids too) into its init.scope.
  setsid unshare --mount --propagation private sh -c '
    for d in '"$(cg_dirs "$CG")"'; do echo $$ > $d/cgroup.procs; done
    mount -t tmpfs -o mode=755 tmpfs /run/systemd && mkdir /run/systemd/system   # sd_booted() check
    mount --bind "$0/console.log" /dev/console
    exec /lib/systemd/systemd --user' "$B" </dev/null >>"$B/console.log" 2>&1 &
  rec_pid "$B/user.pid" $!
  for _ in $(seq 400); do
    [ -S "$B/run/bus" ] && systemctl --user is-active -q default.target 2>/dev/null && break; sleep 0.025; done
  systemctl --user is-active -q default.target || { echo "systemd-sandbox: systemd --user failed" >&2
    cat "$B/console.log" >&2; exit 1; }   # the EXIT trap stops it
  rm -f "$B/starter.pid"
  echo "systemd --user up as pid $(rec_pid_of "$B/user.pid") in $(ms) ms (SDTEST_DIR=$B SDTEST_CGROUP=$CG)"
}

# Power off (system: SIGRTMIN+4; user: SIGTERM), then kill whatever is left, then remove every trace.
# Safe to run any number of times, after a failed start, and on a sandbox whose processes are long gone.
# Processes and cgroups are only touched when the state dir or the registry says they are this sandbox's.
stop_sandbox() { # [--kill]: no power-off, SIGKILL at once (nobody waits for a clean shutdown)
  local P="" U="" W="" sig=RTMIN+4 i owned="" wait=$(( ${SDTEST_STOP_TIMEOUT:-5} * 40 ))
  [ -f "$B/sandbox.env" ] && [ "$(recorded CG)" = "$CG" ] && owned=1
  [ "$(readlink "$REG/$CG" 2>/dev/null)" = "$B" ] && owned=1
  if rec_alive "$B/watcher.pid"; then W=$(rec_pid_of "$B/watcher.pid"); [ "$W" = $$ ] || kill "$W" 2>/dev/null || true; fi
  if rec_alive "$B/init.pid"; then P=$(rec_pid_of "$B/init.pid"); fi
  if rec_alive "$B/user.pid"; then P=$(rec_pid_of "$B/user.pid"); sig=TERM; fi
  [ "${1:-}" = --kill ] && sig=KILL
  if rec_alive "$B/unshare.pid"; then U=$(rec_pid_of "$B/unshare.pid"); fi
  if [ -n "$P" ]; then
    kill -s "$sig" "$P" 2>/dev/null || true
    for i in $(seq "$wait"); do pid_start "$P" >/dev/null || break; sleep 0.025; done
    pid_start "$P" >/dev/null && kill -KILL "$P" 2>/dev/null || true   # SIGKILL to ns-init kills the whole ns
  fi
  [ -n "$U" ] && pid_start "$U" >/dev/null && kill -KILL "$U" 2>/dev/null || true
  if [ -n "$owned" ]; then
    cg_remove "$CG" || return 1   # keep the state and registry entry: stop or gc can try again
  fi
  if [ -n "$P" ]; then for i in $(seq 200); do pid_start "$P" >/dev/null || break; sleep 0.025; done; fi
  if [ "$(readlink "$REG/$CG" 2>/dev/null)" = "$B" ]; then rm -f "$REG/$CG"; fi
  if [ -f "$B/sandbox.env" ] || [ -f "$B/init.sh" ] || [ -f "$B/console.log" ]; then
    # only what start made: a state dir that held other files keeps them
    rm -rf --one-file-system "$B/ovl" "$B/root" "$B/share" "$B/config" "$B/run" "$B/data" "$B/state" "$B/cache"
    rm -f "$B/init.sh" "$B/console.log" "$B/unshare.log" "$B/init.pid" "$B/unshare.pid" "$B/user.pid" \
      "$B/watcher.pid" "$B/starter.pid" "$B/owner.pid" "$B/sandbox.env"
    rmdir "$B" 2>/dev/null || true
  fi
}

# Remove every registered sandbox that is no longer running, or whose owner is gone (a test binary
# killed mid-way and its watcher with it), and unregistered empty sdtest-* cgroups.
gc() {
  local l d cg n=0
  for l in "$REG"/*; do
    [ -L "$l" ] || continue
    d=$(readlink "$l"); cg=$(basename "$l")
    if [ -f "$d/sandbox.env" ] && sandbox_alive "$d"; then continue; fi
    echo "systemd-sandbox gc: removing stale sandbox $d (cgroup $cg)"
    SDTEST_DIR=$d SDTEST_CGROUP=$cg "$SELF" stop --kill && rm -f "$l"; n=$((n + 1))
  done
  for d in $(cg_roots); do
    for l in "$d"/sdtest-*; do
      [ -d "$l" ] || continue; cg=$(basename "$l")
      [ -L "$REG/$cg" ] && continue
      if cg_populated "$cg"; then echo "systemd-sandbox gc: leaving cgroup $l: not registered but has processes" >&2; continue; fi
      echo "systemd-sandbox gc: removing empty cgroup $l"; cg_remove "$cg" || true; n=$((n + 1))
    done
  done
  echo "systemd-sandbox gc: $n removed"
}

print_env() {
  if [ "$MODE" = user ]; then
    rec_alive "$B/user.pid" || die "no sandbox running in $B"
    printf 'export %s=%s\n' XDG_RUNTIME_DIR "$B/run" DBUS_SESSION_BUS_ADDRESS "unix:path=$B/run/bus" \
      SDTEST_SYSTEMD_ADDRESS "unix:path=$B/run/systemd/private" SDTEST_UNIT_DIR "$B/config/systemd/user" \
      SDTEST_INIT_PID "$(rec_pid_of "$B/user.pid")" SDTEST_DIR "$B" SDTEST_CGROUP "$CG"
  else
    rec_alive "$B/init.pid" || die "no sandbox running in $B"
    # The system bus (dbus-daemon) is the way in from the host; systemd's private socket is not:
    # it refuses peers outside its pid namespace ("unprivileged client": their SO_PEERCRED pid is 0).
    local P R; P=$(rec_pid_of "$B/init.pid"); R=/proc/$P/root
    printf 'export %s=%s\n' DBUS_SYSTEM_BUS_ADDRESS "unix:path=$R/run/dbus/system_bus_socket" \
      SDTEST_UNIT_DIR "$R/etc/systemd/system" \
      SDTEST_ROOT "$R" SDTEST_INIT_PID "$P" SDTEST_SHARE_DIR "$B/share" SDTEST_DIR "$B" SDTEST_CGROUP "$CG"
  fi
}

run_exec() {
  if [ "$MODE" = user ]; then
    rec_alive "$B/user.pid" || die "no sandbox running in $B"
    exec env XDG_RUNTIME_DIR="$B/run" DBUS_SESSION_BUS_ADDRESS="unix:path=$B/run/bus" "$@"
  fi
  rec_alive "$B/init.pid" || die "no sandbox running in $B"
  local P wd=/; P=$(rec_pid_of "$B/init.pid")
  [ -d "/proc/$P/root$PWD" ] && wd=$PWD
  exec nsenter -t "$P" -a --wd="$wd" env -u DBUS_SYSTEM_BUS_ADDRESS -u DBUS_SESSION_BUS_ADDRESS \
    -u XDG_RUNTIME_DIR -u SDTEST_UNIT_DIR -u SDTEST_SYSTEMD_ADDRESS -u SDTEST_ROOT "$@"   # rest of env is inherited
}

case "${1:-}" in
  check) preflight; echo "systemd-sandbox: this machine can run a $MODE sandbox" ;;
  start) preflight
         for d in $SHARE; do [ -d "$d" ] || die "SDTEST_SHARE: no directory $d"
           [[ "$d" =~ ^/[A-Za-z0-9/._+-]*$ ]] || die "SDTEST_SHARE: absolute paths of [A-Za-z0-9/._+-] only: $d"; done
         claim; if [ "$MODE" = user ]; then start_user; else start_system; fi
         trap - EXIT INT TERM HUP ;;
  stop)  stop_sandbox "${2:-}" ;;
  env)   print_env ;;
  exec)  shift; [ $# -gt 0 ] || die "exec needs a command"; run_exec "$@" ;;
  gc)    gc ;;
  _watch) shift; watch_owner "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2 ;;
esac
