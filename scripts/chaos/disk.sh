# Sourced by scripts/chaos/run.sh (uses its record, log, wait_until, has_leader and the
# compose variables): the full-disk fault.
#
#   disk-full  node 3's data is a filesystem of its own (DISK_MB, default 256: an ext4 image
#              on a loop device, mounted in the run's folder at node3-data; compose
#              bind-mounts it as the node's /data volume, and on --target local it is the
#              data_dir of node 3's generated config, mounted before the node first starts;
#              either way it survives the node's restarts). The fault fills it with one file
#              until less than half the node's free-space reserve (`[limits]
#              reserve_free_mb`, 64 MiB) is left, holds, and deletes the file. Meanwhile node 3
#              refuses writes with 507 `"proposed": false` and keeps answering reads; it must
#              resume by itself. The number of 507 answers in its log is printed.
# The image is unmounted and removed on exit.

DISK_NODE=3
DISK_MNT=      # the mounted filesystem of node $DISK_NODE, once made

disk_make() { # before `up`: the filesystem and its compose override lines
  local img=$DIR/node$DISK_NODE.img
  DISK_MNT=$DIR/node$DISK_NODE-data
  truncate -s "${DISK_MB:-256}M" "$img"
  mkfs.ext4 -q -F "$img"
  mkdir -p "$DISK_MNT"
  mount -o loop "$img" "$DISK_MNT"
  rmdir "$DISK_MNT/lost+found" 2>/dev/null || true
  chown 10001:10001 "$DISK_MNT"
  chmod 1777 "$DISK_MNT"
}
disk_override() { # the volumes line of node $DISK_NODE in chaos.yml
  echo "    volumes: [\"./secrets:/etc/sealkm:ro\", \"$DISK_MNT:/data\"]"
}
disk_remove() { # after `down`
  [ -n "$DISK_MNT" ] || return 0
  rm -f "$DISK_MNT/chaos-fill" 2>/dev/null || true
  umount "$DISK_MNT" 2>/dev/null || umount -l "$DISK_MNT" 2>/dev/null || true
  rmdir "$DISK_MNT" 2>/dev/null || true
  rm -f "$DIR/node$DISK_NODE.img"
  DISK_MNT=
}
refused_507() {
  if [ "$TARGET" = compose ]; then
    docker logs "${CTR[$DISK_NODE]}" 2>&1 | grep -c '" 507 ' || true
  else
    grep -c '" 507 ' "$DIR/node$DISK_NODE.log" 2>/dev/null || true
  fi
}
disk_full() { # disk_full HOLD_S T0
  local avail fill before
  before=$(refused_507)
  avail=$(df -B1 --output=avail "$DISK_MNT" | tail -1 | tr -d ' ')
  fill=$(( avail - 32 * 1024 * 1024 ))
  [ "$fill" -gt 0 ] && fallocate -l "$fill" "$DISK_MNT/chaos-fill"
  sleep "$1"
  rm -f "$DISK_MNT/chaos-fill"
  wait_until 60 "a leader" has_leader
  log "disk-full of node $DISK_NODE: $(( $(refused_507) - before )) requests answered 507 meanwhile"
  record disk-full "$DISK_NODE" "$2" "$(now_ms)"
}
