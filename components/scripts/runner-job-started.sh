#!/usr/bin/env bash
# ARC runner hook, job started (ACTIONS_RUNNER_HOOK_JOB_STARTED): runs in the runner container
# before the first step of every job. Starts the job from a clean workspace and refuses to start
# a GPU job on a GPU that nvidia-smi cannot read or that has uncorrected ECC errors.
set -euo pipefail

log() { printf '[job-started] %s\n' "$*"; }

clean() {
  local dir="$1"
  if [[ -n "${dir}" && -d "${dir}" ]]; then
    log "cleaning ${dir}"
    find "${dir}" -mindepth 1 -delete
  fi
}

clean "${GITHUB_WORKSPACE:-}"
clean "${RUNNER_TEMP:-}"

if ! command -v nvidia-smi >/dev/null 2>&1; then
  log "no nvidia-smi: CPU runner, no GPU check"
  exit 0
fi

log "GPU health"
if ! gpus="$(nvidia-smi --query-gpu=index,name,memory.total,ecc.errors.uncorrected.volatile.total \
  --format=csv,noheader)"; then
  log "nvidia-smi failed: the GPU is not usable, failing the job before it starts"
  exit 1
fi
printf '%s\n' "${gpus}"

count="$(printf '%s\n' "${gpus}" | grep -c .)"
expected="${EXPECTED_GPUS:-0}"
if ((count < expected)); then
  log "found ${count} GPU(s), the runner class requests ${expected}"
  exit 1
fi

# The last field is the uncorrected ECC error count ("[N/A]" where ECC is off).
while IFS=, read -r index _ _ ecc; do
  ecc="${ecc// /}"
  if [[ "${ecc}" =~ ^[0-9]+$ ]] && ((ecc > 0)); then
    log "GPU ${index} has ${ecc} uncorrected ECC error(s)"
    exit 1
  fi
done <<<"${gpus}"
log "${count} GPU(s) healthy"
