#!/usr/bin/env bash
# Kept for old habits: the chaos run is scripts/chaos/run.sh (recorded workload, seeded faults,
# history checker). This calls it with kill -9 of a node and of the leader; arguments are passed
# on (e.g. --duration 120 --seed 7 --faults kill,kill-leader,pause).
exec "$(dirname "$0")/chaos/run.sh" --faults kill,kill-leader "$@"
