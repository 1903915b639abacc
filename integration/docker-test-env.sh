#!/usr/bin/env bash
# A private Docker engine for Drover's tests, and the local test image.
#
#   integration/docker-test-env.sh install            # apt-get docker.io + busybox-static if missing
#   integration/docker-test-env.sh start DIR          # dockerd under DIR; prints `export DOCKER_HOST=...`
#   integration/docker-test-env.sh build-image        # drover-test/busybox:latest in $DOCKER_HOST's engine
#   integration/docker-test-env.sh stop DIR           # removes every container, stops that dockerd by PID
#
# The engine never touches the host's network: no bridge, no iptables, no
# masquerading; containers use host networking. Storage is `vfs` under DIR,
# so no kernel overlay support is needed. No registry is reachable: the
# test image is a `docker import` of a root file system holding Debian's
# static busybox and a symlink per applet.
#
# By hand:
#   dir=$(mktemp -d) && eval "$(integration/docker-test-env.sh start "$dir")"
#   integration/docker-test-env.sh build-image
#   cargo test -p exec-runtime --test docker
#   integration/docker-test-env.sh stop "$dir"
set -euo pipefail

IMAGE=drover-test/busybox:latest
# The applets the tests and a developer's examples use.
APPLETS="sh ash sleep echo cat env true false ls ps kill httpd wget nc printf id hostname grep mkdir rm touch test ["

die() { echo "docker-test-env: $*" >&2; exit 1; }
note() { echo "docker-test-env: $*" >&2; }

cmd_install() {
  local missing=() pkg
  for pkg in docker.io busybox-static; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    note "docker.io and busybox-static are installed"
    return
  fi
  note "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
}

cmd_start() {
  local dir=${1:?usage: start DIR}
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local sock=$dir/docker.sock pidfile=$dir/dockerd.pid
  # A unix socket path has at most 107 bytes.
  [ ${#sock} -lt 100 ] || die "the socket path $sock is too long; use a shorter DIR"
  command -v dockerd >/dev/null || die "dockerd is missing (run: $0 install)"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    die "a dockerd (pid $(cat "$pidfile")) already runs under $dir"
  fi
  mkdir -p "$dir/root" "$dir/exec"
  # setsid: the engine outlives this script's process group but is stopped
  # by `stop`, by PID.
  setsid dockerd \
    --bridge=none --iptables=false --ip-masq=false --storage-driver=vfs \
    -H "unix://$sock" --data-root "$dir/root" --exec-root "$dir/exec" \
    --pidfile "$dir/dockerd.pidfile" \
    </dev/null >"$dir/dockerd.log" 2>&1 &
  echo $! >"$pidfile"
  local i
  for i in $(seq 1 300); do
    if DOCKER_HOST=unix://$sock docker info >/dev/null 2>&1; then
      note "dockerd (pid $(cat "$pidfile")) answers on $sock"
      echo "export DOCKER_HOST=unix://$sock"
      return
    fi
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { tail -20 "$dir/dockerd.log" >&2; die "dockerd exited"; }
    sleep 0.2
  done
  tail -20 "$dir/dockerd.log" >&2
  die "dockerd did not answer on $sock within 60 s"
}

cmd_build_image() {
  [ -n "${DOCKER_HOST:-}" ] || die "DOCKER_HOST is not set (run: eval \"\$($0 start DIR)\")"
  local busybox
  busybox=$(command -v busybox || true)
  [ -x /bin/busybox ] && busybox=/bin/busybox
  [ -n "$busybox" ] || die "busybox is missing (run: $0 install)"
  if ldd "$busybox" >/dev/null 2>&1; then
    die "$busybox is not static (install busybox-static)"
  fi
  local rootfs
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc" "$rootfs/www"
  cp "$busybox" "$rootfs/bin/busybox"
  local applet
  for applet in $APPLETS; do ln -s busybox "$rootfs/bin/$applet"; done
  echo 'root:x:0:0:root:/:/bin/sh' >"$rootfs/etc/passwd"
  echo 'root:x:0:' >"$rootfs/etc/group"
  echo 'drover' >"$rootfs/www/index.html"
  chmod 1777 "$rootfs/tmp"
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/bin' \
    --change 'CMD ["/bin/sh"]' \
    - "$IMAGE" >/dev/null
  rm -rf "$rootfs"
  note "built $IMAGE"
}

cmd_stop() {
  local dir=${1:?usage: stop DIR}
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  local pidfile=$dir/dockerd.pid pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    local ids
    ids=$(DOCKER_HOST=unix://$dir/docker.sock timeout 30 docker ps -aq 2>/dev/null || true)
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086 # one argument per container id
      DOCKER_HOST=unix://$dir/docker.sock timeout 60 docker rm -f $ids >/dev/null 2>&1 || true
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      note "dockerd (pid $pid) ignored SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
  # Container mounts under the data root would make the scratch dir
  # undeletable; unmount whatever the engine left behind.
  local m
  for m in $(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  note "dockerd (pid $pid) stopped"
}

case "${1:-}" in
  install) cmd_install ;;
  start) shift; cmd_start "$@" ;;
  build-image) cmd_build_image ;;
  stop) shift; cmd_stop "$@" ;;
  *) die "usage: $0 install | start DIR | build-image | stop DIR" ;;
esac
