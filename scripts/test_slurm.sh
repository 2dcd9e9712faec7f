#!/usr/bin/env bash
# flowmpi under a real, one-node Slurm on this machine (run by scripts/test.sh as root):
#   1. installs Debian's slurm-wlm and munge if missing, writes a one-node slurm.conf in a
#      scratch directory (20 CPUs declared on a 2-core machine: oversubscription), and starts
#      munged, slurmctld and slurmd;
#   2. sbatch scripts/slurm/flowmpi.sbatch on the shipped example data: the model must equal the
#      one `mpirun -n 4` trains (byte for byte) and the job log must hold no error;
#   3. the job script with LAUNCH=mpirun, and srun -n 4 flowmpi train directly (the PMI plugin
#      the job script would pick);
#   4. a checkpointed k-means killed by its time limit (--time), launched by srun and by mpirun
#      inside the job: the job ends TIMEOUT with the
#      checkpoint written and no model; resubmitted with --resume it ends at the centroids of an
#      uninterrupted run, bit for bit; and the job script with LAUNCH=mpirun warned by
#      --signal=B:USR1 ahead of its limit stops checkpointed before it;
#   5. tears everything down (also on failure).
# Usage: bash scripts/test_slurm.sh   (needs root; a no-op with a message otherwise)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
if [ "$(id -u)" != 0 ]; then
  echo "test_slurm.sh: skipped: starting munged/slurmctld/slurmd needs root" >&2
  exit 0
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "== installing slurm-wlm and munge"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
[ -x target/release/flowmpi ] || cargo build --release --bin flowmpi

work=$(mktemp -d /tmp/flowmpi-slurm.XXXXXX)
chmod 755 "$work"
host=$(hostname -s)
export SLURM_CONF=$work/slurm.conf
# The launcher settings the tests below need as root on a 2-core machine.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1

teardown() {
  set +e
  for d in slurmd slurmctld; do
    [ -f "$work/$d.pid" ] && kill "$(cat "$work/$d.pid")" 2>/dev/null
  done
  [ -f "$work/munge/munged.pid" ] && kill "$(cat "$work/munge/munged.pid")" 2>/dev/null
  sleep 1
  pkill -f "slurmstepd.*$work" 2>/dev/null
  if [ "${keep:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
fail() {
  echo "test_slurm.sh: FAILED: $*" >&2
  for f in "$work"/slurmctld.log "$work"/slurmd.log; do
    [ -f "$f" ] && { echo "--- tail of $f" >&2; tail -20 "$f" >&2; }
  done
  keep=1
  exit 1
}
trap teardown EXIT

echo "== starting munged, slurmctld and slurmd in $work"
# No systemd here: munged needs its socket directory, owned by munge.
mkdir -p "$work/munge" /etc/munge
chown munge:munge "$work/munge"
[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
runuser -u munge -- munged --socket="$work/munge/munge.socket" --pid-file="$work/munge/munged.pid" \
  --log-file="$work/munge/munged.log" --seed-file="$work/munge/seed" || fail "munged did not start"
cat > "$SLURM_CONF" <<EOF
ClusterName=flowmpi-test
SlurmctldHost=$host
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$work/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
# No cgroups in a container: plain process tracking, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
# SIGTERM at the time limit, SIGKILL KillWait seconds later.
KillWait=20
MinJobAge=600
# 20 CPUs declared on a 2-core machine, so that the five 4-task jobs of the time-limit test
# all start at once. With too few, one of them pended until another ended, and when that was a
# time-limited one it then ran alone, finished in 54 s and was never stopped (a CI failure).
SlurmdParameters=config_overrides
NodeName=$host CPUs=20 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
# The PMIx plugin's per-step client directories go under $work, not /tmp: job ids restart at 1
# with every fresh StateSaveLocation, and a directory left in /tmp by an earlier run's killed
# step (/tmp/spmix_appdir_0_5.0) made this run's step 5 fail to launch.
echo "PMIxCliTmpDirBase=$work/pmix" > "$work/mpi.conf"
mkdir -p "$work/state" "$work/spool" "$work/pmix"
slurmctld -f "$SLURM_CONF" || fail "slurmctld did not start"
slurmd -f "$SLURM_CONF" || fail "slurmd did not start"
for _ in $(seq 1 30); do
  sinfo -h -o %t 2>/dev/null | grep -qE '^idle' && break
  sleep 1
done
sinfo -h -o %t | grep -qE '^idle' || fail "the node did not come up idle: $(sinfo 2>&1)"

# The job's state, from slurmctld (no accounting database here).
job_state() { scontrol show job "$1" | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
# sbatch "$@" and wait for the job to end (sbatch --wait polls ever more slowly); prints its id.
run_job() {
  local id
  id=$(sbatch --parsable "$@") || return 1
  while [[ "$(job_state "$id")" =~ ^(PENDING|CONFIGURING|RUNNING|COMPLETING|SUSPENDED)$ ]]; do sleep 1; done
  echo "$id"
}

data='data/example/part{rank}.csv'
flow='moments | covariance | pca(n=3)'

echo "== reference: mpirun -n 4"
mpirun -n 4 target/release/flowmpi -q train --data "$data" --flow "$flow" --model "$work/mpirun.json"

echo "== sbatch scripts/slurm/flowmpi.sbatch (4 tasks on one node)"
cd "$work"
jobid=$(DATA="$repo/$data" FLOW="$flow" MODEL="$work/sbatch.json" FLOWMPI="$repo/target/release/flowmpi" \
  run_job --nodes=1 --ntasks=4 --ntasks-per-node=4 --cpus-per-task=1 --mem-per-cpu=0 \
  --output="$work/job-%j.out" "$repo/scripts/slurm/flowmpi.sbatch") || fail "the job failed: $(cat "$work"/job-*.out)"
cd "$repo"
log="$work/job-$jobid.out"
[ "$(job_state "$jobid")" = COMPLETED ] || fail "job $jobid ended $(job_state "$jobid")"
cmp "$work/mpirun.json" "$work/sbatch.json" || fail "the sbatch model differs from mpirun's"
grep -qi 'error\|warning\|panick' "$log" && fail "the job log has errors: $(cat "$log")"
grep -q 'launching with srun --mpi=' "$log" || echo "   (the job script fell back to: $(grep launching "$log"))"
echo "   job $jobid: model identical to mpirun's; log clean"

echo "== the job script with LAUNCH=mpirun (Open MPI's mpirun reading the allocation)"
jobid=$(DATA="$repo/$data" FLOW="$flow" MODEL="$work/sbatch_mpirun.json" FLOWMPI="$repo/target/release/flowmpi" LAUNCH=mpirun \
  run_job --chdir="$work" --nodes=1 --ntasks=4 --ntasks-per-node=4 --cpus-per-task=1 --mem-per-cpu=0 \
  --output="$work/job-%j.out" "$repo/scripts/slurm/flowmpi.sbatch") || fail "the job could not be submitted"
[ "$(job_state "$jobid")" = COMPLETED ] || fail "job $jobid ended $(job_state "$jobid"): $(cat "$work/job-$jobid.out")"
grep -q 'launching with mpirun' "$work/job-$jobid.out" || fail "LAUNCH=mpirun did not launch with mpirun: $(cat "$work/job-$jobid.out")"
cmp "$work/mpirun.json" "$work/sbatch_mpirun.json" || fail "the LAUNCH=mpirun model differs from mpirun's"
echo "   job $jobid: model identical to mpirun's"

echo "== the job script's other commands: execute, and a map resubmitted after a stop"
mpirun -n 4 target/release/flowmpi -q execute --model "$work/mpirun.json" --data "$data" --out "$work/ref{rank}.csv"
jobid=$(COMMAND=execute DATA="$repo/$data" MODEL="$work/mpirun.json" OUT="$work/exe{rank}.csv" FLOWMPI="$repo/target/release/flowmpi" \
  run_job --chdir="$work" --nodes=1 --ntasks=4 --cpus-per-task=1 --mem-per-cpu=0 \
  --output="$work/job-%j.out" "$repo/scripts/slurm/flowmpi.sbatch") || fail "the execute job could not be submitted"
[ "$(job_state "$jobid")" = COMPLETED ] || fail "execute job $jobid ended $(job_state "$jobid"): $(cat "$work/job-$jobid.out")"
for r in 0 1 2 3; do cmp "$work/ref$r.csv" "$work/exe$r.csv" || fail "COMMAND=execute: shard $r differs from mpirun's"; done
printf '%s\n' "it's one" "two; three" "four" "five" "six" "seven" > "$work/tasks.txt"
# The journal of an earlier job that ran tasks 0 and 2: the resubmitted job must skip them.
printf '0\texit 0\t0.001\tit'"'"'s one\n2\texit 0\t0.001\tfour\n' > "$work/tasks.txt.journal"
jobid=$(COMMAND=map TASKS="$work/tasks.txt" TASK_CMD="printf '%s\n' {q} >> $work/ran.txt" FLOWMPI="$repo/target/release/flowmpi" \
  run_job --chdir="$work" --nodes=1 --ntasks=4 --cpus-per-task=1 --mem-per-cpu=0 \
  --output="$work/job-%j.out" "$repo/scripts/slurm/flowmpi.sbatch") || fail "the map job could not be submitted"
[ "$(job_state "$jobid")" = COMPLETED ] || fail "map job $jobid ended $(job_state "$jobid"): $(cat "$work/job-$jobid.out")"
grep -q 'resuming from' "$work/job-$jobid.out" || fail "the map job did not resume: $(cat "$work/job-$jobid.out")"
[ "$(sort "$work/ran.txt" | tr '\n' '|')" = "five|seven|six|two; three|" ] || fail "the map ran $(cat "$work/ran.txt")"
echo "   execute: shards identical to mpirun's; map: resumed, the 4 remaining tasks ran once each, lines intact"

echo "== srun -n 4 flowmpi train"
plugin=$(srun --mpi=list 2>&1 | grep -owE 'pmix(_v[0-9]+)?|pmi2' | head -1)
[ -n "$plugin" ] || fail "srun offers no PMI plugin: $(srun --mpi=list 2>&1)"
srun --mpi="$plugin" -n 4 target/release/flowmpi -q train --data "$data" --flow "$flow" --model "$work/srun.json" \
  || fail "srun --mpi=$plugin -n 4 failed"
cmp "$work/mpirun.json" "$work/srun.json" || fail "the srun model differs from mpirun's"
echo "   srun --mpi=$plugin: model identical to mpirun's"

echo "== a checkpointed k-means at its time limit, then --resume"
big=$work/big
mkdir -p "$big"
# Four shards of 250,000 x 8 rows in six loose groups, as NPY (plain Python: no numpy needed).
python3 - "$big" <<'EOF'
import array, random, sys
rng = random.Random(7)
for r in range(4):
    rows = 250_000
    x = array.array("d", (rng.gauss(0, 1) + g for _ in range(rows) for g in [rng.randrange(6)] for _ in range(8)))
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (%d, 8), }" % rows
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(f"{sys.argv[1]}/part{r}.npy", "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + x.tobytes())
EOF
km="kmeans(k=48, seed=3, max_iter=1200, tol=0)"
train=("$repo/target/release/flowmpi" train --data "$big/part{rank}.npy" --flow "$km" -q)
printf '#!/bin/sh\nexec srun --mpi=%s "$@"\n' "$plugin" > "$work/step.sh"
# The uninterrupted run (srun, 4 ranks, as the resumed one) beside the jobs that hit their time
# limit: Slurm's limits are whole minutes, enforced about every 30 s, so those jobs must run well
# over 90 s. Alone, one takes about 55 s on 2 cores; the three share the cores from the start
# (20 CPUs declared above), which keeps this part near two minutes.
# The same under Open MPI's mpirun inside the job (LAUNCH=mpirun), beside it: Slurm signals
# mpirun and the ranks it started, and the ranks must still stop checkpointed.
printf '#!/bin/sh\nexec mpirun -n "$SLURM_NTASKS" "$@"\n' > "$work/step_mpirun.sh"
# And the shipped job script, with each launcher, and Slurm's early warning to the batch shell
# (--signal=B:USR1@60, sent 60-90 s before the 2-minute limit): the script must pass it on to
# srun or mpirun, which pass it to the ranks, and the job must stop checkpointed before its
# limit. max_iter=5000 would take about 4 minutes alone.
warned=()
for launch in mpirun srun; do
  warned+=("$(DATA="$big/part{rank}.npy" FLOW="kmeans(k=48, seed=3, max_iter=5000, tol=0)" MODEL="$work/kms_$launch.json" \
    ARGS="--checkpoint $work/kms_${launch}_ck.json" FLOWMPI="$repo/target/release/flowmpi" LAUNCH=$launch \
    sbatch --parsable --chdir="$work" --nodes=1 --ntasks=4 --ntasks-per-node=4 --cpus-per-task=1 --mem-per-cpu=0 \
    --time=2 --signal=B:USR1@60 --output="$work/kms_$launch-%j.out" "$repo/scripts/slurm/flowmpi.sbatch")") \
    || fail "the --signal=B:USR1 job could not be submitted"
done
mjob=$(sbatch --parsable --chdir="$work" --nodes=1 --ntasks=4 --time=1 --output="$work/kmm-%j.out" \
  "$work/step_mpirun.sh" "${train[@]}" --model "$work/kmm.json" --checkpoint "$work/kmm_ck.json")
start=$SECONDS
srun --mpi="$plugin" -n 4 "${train[@]}" --model "$work/km_ref.json" &
ref=$!
jobid=$(run_job --chdir="$work" --nodes=1 --ntasks=4 --time=1 --output="$work/km-%j.out" \
  "$work/step.sh" "${train[@]}" --model "$work/km.json" --checkpoint "$work/km_ck.json")
out=$work/km-$jobid.out
echo "   job $jobid ended $(job_state "$jobid") after $((SECONDS - start)) s"
wait "$ref" || fail "the uninterrupted k-means failed"
echo "   the uninterrupted run ended after $((SECONDS - start)) s"
[ "$(job_state "$jobid")" = TIMEOUT ] || fail "job $jobid ended $(job_state "$jobid"), not TIMEOUT: $(cat "$out")"
[ -f "$work/km_ck.json" ] || fail "no checkpoint after the time limit: $(cat "$out")"
[ ! -e "$work/km.json" ] || fail "the job killed at its time limit wrote a model"
grep -q 'stopped by a signal after iteration' "$out" || fail "no stop message: $(cat "$out")"
echo "   $(grep -o 'stopped by a signal after iteration [0-9]* of at most [0-9]*' "$out" | head -1)"
while [[ "$(job_state "$mjob")" =~ ^(PENDING|CONFIGURING|RUNNING|COMPLETING|SUSPENDED)$ ]]; do sleep 1; done
mout=$work/kmm-$mjob.out
[ "$(job_state "$mjob")" = TIMEOUT ] || fail "mpirun job $mjob ended $(job_state "$mjob"), not TIMEOUT: $(cat "$mout")"
[ -f "$work/kmm_ck.json" ] || fail "no checkpoint after the time limit under mpirun: $(cat "$mout")"
[ ! -e "$work/kmm.json" ] || fail "the mpirun job killed at its time limit wrote a model"
# mpirun tears the job down on its own SIGTERM, and with it the ranks' output: their stop
# message may be lost, but the checkpoint of the last whole iteration is there (resumed below).
echo "   under mpirun: job $mjob ended TIMEOUT, checkpoint of iteration $(sed -n 's/.*"iteration": *\([0-9]*\).*/\1/p' "$work/kmm_ck.json" | head -1)"
for k in 0 1; do
  launch=$([ $k = 0 ] && echo mpirun || echo srun); sjob=${warned[$k]}
  while [[ "$(job_state "$sjob")" =~ ^(PENDING|CONFIGURING|RUNNING|COMPLETING|SUSPENDED)$ ]]; do sleep 1; done
  sout=$work/kms_$launch-$sjob.out
  [ "$(job_state "$sjob")" = FAILED ] || fail "LAUNCH=$launch: the job warned by --signal=B:USR1 ended $(job_state "$sjob"), not FAILED (stopped early): $(cat "$sout")"
  [ -f "$work/kms_${launch}_ck.json" ] || fail "LAUNCH=$launch: no checkpoint after --signal=B:USR1: $(cat "$sout")"
  [ ! -e "$work/kms_$launch.json" ] || fail "LAUNCH=$launch: the job stopped by --signal=B:USR1 wrote a model"
  grep -q 'stopped by a signal after iteration' "$sout" || fail "LAUNCH=$launch: no stop message after --signal=B:USR1: $(cat "$sout")"
  echo "   flowmpi.sbatch, LAUNCH=$launch, --signal=B:USR1@60: job $sjob $(grep -o 'stopped by a signal after iteration [0-9]*' "$sout" | head -1), after $(scontrol show job "$sjob" | grep -o 'RunTime=[0-9:]*' | cut -d= -f2) of its 2:00"
done
jobid=$(run_job --chdir="$work" --nodes=1 --ntasks=4 --output="$work/km-%j.out" \
  "$work/step.sh" "${train[@]}" --model "$work/km.json" --checkpoint "$work/km_ck.json" --resume)
[ "$(job_state "$jobid")" = COMPLETED ] || fail "the resumed k-means job ended $(job_state "$jobid"): $(cat "$work/km-$jobid.out")"
python3 - "$work/km_ref.json" "$work/km.json" <<'EOF' || fail "the resumed centroids differ from the uninterrupted run's"
import json, sys
a, b = (json.load(open(p))["nodes"][0] for p in sys.argv[1:])
assert a["centroids"] == b["centroids"], "centroids differ"
assert a["inertia"] == b["inertia"] and a["n_iter"] == b["n_iter"], (a["inertia"], b["inertia"], a["n_iter"], b["n_iter"])
print(f"   resumed: {b['n_iter']} iterations, centroids and inertia bit-identical to the uninterrupted run")
EOF
jobid=$(run_job --chdir="$work" --nodes=1 --ntasks=4 --output="$work/kmm-%j.out" \
  "$work/step_mpirun.sh" "${train[@]}" --model "$work/kmm.json" --checkpoint "$work/kmm_ck.json" --resume)
[ "$(job_state "$jobid")" = COMPLETED ] || fail "the resumed mpirun k-means job ended $(job_state "$jobid"): $(cat "$work/kmm-$jobid.out")"
python3 - "$work/km_ref.json" "$work/kmm.json" <<'EOF' || fail "the centroids resumed under mpirun differ from the uninterrupted run's"
import json, sys
a, b = (json.load(open(p))["nodes"][0] for p in sys.argv[1:])
assert a["centroids"] == b["centroids"] and a["inertia"] == b["inertia"] and a["n_iter"] == b["n_iter"]
print("   resumed under mpirun: bit-identical too")
EOF
echo "test_slurm.sh: all Slurm tests passed"
