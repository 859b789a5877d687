#!/bin/bash
# Reconstruct every selected frame of a config as a Slurm job array: each array task is one
# shard (`--shard K/N`) and writes its own frame folders and run_shard_K_of_N.json into the
# config's output_dir, which must be on a file system every node shares.
#
# Submit, then summarize once every task has ended (see docs/cluster.md):
#   jid=$(sbatch --parsable docs/examples/slurm-array.sh)
#   sbatch --dependency=afterany:"$jid" --wrap "aquamvs summarize output"
#
# A task that fails or is preempted can simply be resubmitted (or the whole array): frames
# that are complete and up to date are skipped, interrupted ones are recomputed.
#
#SBATCH --job-name=aquamvs
#SBATCH --array=0-7                 # N = 8 shards, K = 0..7 (keep the range contiguous)
#SBATCH --cpus-per-task=16
#SBATCH --mem=32G
#SBATCH --time=24:00:00
#SBATCH --requeue                   # preempted tasks come back and resume
#SBATCH --output=aquamvs_%A_%a.log

set -euo pipefail

CONFIG=${CONFIG:-config.yaml}
# K counts from 0 even if the array was declared as 1-8.
K=$((SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN))
N=${SLURM_ARRAY_TASK_COUNT}

# One worker thread per allocated CPU (runtime.threads in the config overrides this).
export RAYON_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}

exec aquamvs reconstruct "$CONFIG" --shard "$K/$N"
