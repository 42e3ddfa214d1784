#!/bin/sh
# CRIU action script: runs for every action; only post-restore waits for
# the verifier's verdict (CRIU aborts the restore and kills the restored
# tasks when a post-restore script fails; a failing pre-resume script is
# only logged). Idempotent: CRIU may run it more than once per action
# (CRIU 4.1.1 parses an RPC config file twice). Used by gate-proof.
echo "$(date +%s.%N) $CRTOOLS_SCRIPT_ACTION pid=${CRTOOLS_INIT_PID:-}" >> "$GATE_DIR/trace"
[ "$CRTOOLS_SCRIPT_ACTION" = post-restore ] || exit 0
while [ ! -s "$GATE_DIR/verdict" ]; do sleep 0.005; done
[ "$(cat "$GATE_DIR/verdict")" = ok ]
