#!/usr/bin/env bash
# flowmpi across three "hosts" on this machine (run by scripts/test.sh as root): three network
# namespaces joined by a bridge (veth pairs, 10.77.0.0/24), each process in its own UTS
# namespace with its own hostname, and Open MPI launching its remote daemons through an rsh
# agent that enters the host's namespace (no ssh). Ranks on different hosts talk TCP.
#   1. 6 ranks on 3 hosts train the model a single-host `mpirun -n 6` trains, byte for byte,
#      and `execute` writes the same rows;
#   2. a host loses its link (`ip link set eth0 down`) during a long training: the job ends
#      within 30 s, non-zero, with the previous model intact and no process left on that host.
# Open MPI notices a lost host through TCP keepalive on its out-of-band channel; its defaults
# take ~490 s, so the job scripts set OMPI_MCA_oob_tcp_keepalive_{time,intvl,probes}=5,2,3.
# Usage: bash scripts/test_multihost.sh   (needs root; a no-op with a message otherwise)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
if [ "$(id -u)" != 0 ]; then
  echo "test_multihost.sh: skipped: network namespaces need root" >&2
  exit 0
fi
command -v ip >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null; }
[ -x target/release/flowmpi ] || cargo build --release --bin flowmpi

# A container without CAP_NET_ADMIN cannot make namespaces: say so loudly and skip.
if ! err=$(ip netns add fmprobe$$ 2>&1); then
  echo "test_multihost.sh: SKIPPED: this machine cannot create network namespaces: $err" >&2
  exit 0
fi
ip netns del fmprobe$$
work=$(mktemp -d /tmp/flowmpi-hosts.XXXXXX)
hosts=(fmh1 fmh2 fmh3)
bridge=fmbr$$
net=10.77.0

teardown() {
  set +e
  for h in "${hosts[@]}"; do
    pids=$(ip netns pids "$h" 2>/dev/null)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    ip netns del "$h" 2>/dev/null
  done
  ip link del "$bridge" 2>/dev/null
  if [ "${keep:-0}" = 1 ] || [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
fail() {
  echo "test_multihost.sh: FAILED: $*" >&2
  keep=1
  exit 1
}
trap teardown EXIT

echo "== three hosts: namespaces ${hosts[*]} on bridge $bridge ($net.0/24)"
# Leftovers of an earlier run that was killed (a namespace's veth outlives it briefly).
for h in "${hosts[@]}"; do ip netns del "$h" 2>/dev/null || true; ip link del "v$h" 2>/dev/null || true; done
ip link add "$bridge" type bridge
ip link set "$bridge" up
for i in "${!hosts[@]}"; do
  h=${hosts[$i]}
  ip netns add "$h"
  ip link add "v$h" type veth peer name eth0 netns "$h"
  ip link set "v$h" master "$bridge" up
  ip -n "$h" addr add "$net.$((i + 1))/24" dev eth0
  ip -n "$h" link set eth0 up
  ip -n "$h" link set lo up
  echo "$net.$((i + 1)) $h" >> "$work/hosts.map"
  echo "$net.$((i + 1)) slots=2" >> "$work/hostfile"
done

# Open MPI's rsh agent: called as `agent HOST COMMAND`, the command one shell-quoted string.
cat > "$work/agent.sh" <<EOF
#!/bin/sh
host=\$(awk -v ip="\$1" '\$1 == ip { print \$2 }' "$work/hosts.map")
[ -n "\$host" ] || { echo "agent: unknown host \$1" >&2; exit 1; }
shift
exec ip netns exec "\$host" unshare --uts sh -c "hostname \$host; \$*"
EOF
chmod +x "$work/agent.sh"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export OMPI_MCA_rmaps_base_oversubscribe=1
# What the job scripts set for multi-node runs: a lost host ends the job in seconds.
export OMPI_MCA_oob_tcp_keepalive_time=5 OMPI_MCA_oob_tcp_keepalive_intvl=2 OMPI_MCA_oob_tcp_keepalive_probes=3
# mpirun runs on the first host; ranks 0-1 there, 2-3 on fmh2, 4-5 on fmh3.
on_hosts() {
  ip netns exec "${hosts[0]}" unshare --uts sh -c "hostname ${hosts[0]}; exec \"\$@\"" sh \
    mpirun --hostfile "$work/hostfile" --mca plm_rsh_agent "$work/agent.sh" \
    --mca oob_tcp_if_include "$net.0/24" --mca btl_tcp_if_include "$net.0/24" --mca btl tcp,vader,self \
    -x OPENBLAS_NUM_THREADS -n 6 "$@"
}

data='data/example/part*.csv'
flow='moments | covariance | pca(n=3) | whitening'
bin=$repo/target/release/flowmpi

echo "== 6 ranks on 3 hosts vs 6 ranks on one"
mpirun -n 6 "$bin" -q train --data "$data" --flow "$flow" --model "$work/one.json"
on_hosts "$bin" -v train --data "$repo/$data" --flow "$flow" --model "$work/three.json" 2> "$work/three.log" \
  || fail "the 3-host training failed: $(cat "$work/three.log")"
grep -q 'one node' "$work/three.log" && fail "the 3-host run took the one-node shortcut: $(cat "$work/three.log")"
cmp "$work/one.json" "$work/three.json" || fail "the 3-host model differs from the one-host model"
echo "   model identical to one host's ($(grep -c 'model hash' "$work/three.log") ranks agree)"
mkdir -p "$work/out1" "$work/out3"
mpirun -n 6 "$bin" -q execute --model "$work/one.json" --data "$data" --out "$work/out1/p{rank}.csv"
on_hosts "$bin" -q execute --model "$work/three.json" --data "$repo/$data" --out "$work/out3/p{rank}.csv" \
  || fail "the 3-host execute failed"
diff -r "$work/out1" "$work/out3" >/dev/null || fail "execute wrote different rows on 3 hosts"
echo "   execute output identical"

echo "== a host loses its link during training"
echo OLD > "$work/km.json"
on_hosts "$bin" train --data "$repo/$data" --flow 'kmeans(k=8, init=random, seed=1, max_iter=100000000, tol=0)' \
  --model "$work/km.json" > "$work/lost.log" 2>&1 &
job=$!
for _ in $(seq 1 100); do
  [ "$(ip netns pids "${hosts[2]}" | wc -l)" -ge 3 ] && break
  sleep 0.1
done
sleep 2
kill -0 "$job" 2>/dev/null || fail "the training ended before the link went down: $(cat "$work/lost.log")"
start=$SECONDS
ip -n "${hosts[2]}" link set eth0 down
status=0
for _ in $(seq 1 60); do kill -0 "$job" 2>/dev/null || break; sleep 1; done
if kill -0 "$job" 2>/dev/null; then
  kill -9 "$job"
  fail "the job still ran 60 s after the link went down: $(cat "$work/lost.log")"
fi
wait "$job" || status=$?
took=$((SECONDS - start))
[ "$status" != 0 ] || fail "the job exited 0 after losing a host"
[ "$took" -le 30 ] || fail "the job took $took s to end after losing a host"
[ "$(cat "$work/km.json")" = OLD ] || fail "the previous model changed"
sleep 2
left=$(ip netns pids "${hosts[2]}" | wc -l)
echo "   the job ended in $took s with status $status; $left processes left on the lost host"
echo "   its message: $(grep -m1 -iE 'error|lost|unreachable|abort' "$work/lost.log" || head -3 "$work/lost.log")"
[ "$left" = 0 ] || fail "processes left on the lost host: $(ip netns pids "${hosts[2]}" | xargs -r ps -o pid,etime,cmd -p)"
echo "test_multihost.sh: all multi-host tests passed"
