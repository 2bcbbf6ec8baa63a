#!/usr/bin/env bash
# ARC runner hook, job completed (ACTIONS_RUNNER_HOOK_JOB_COMPLETED): runs in the runner container
# after the last step of every job, whatever its result. Prints what the job used (disk, GPU
# memory and utilization at the end) and leaves nothing behind for the next job on this pod.
set -euo pipefail

log() { printf '[job-completed] %s\n' "$*"; }

workspace="${GITHUB_WORKSPACE:-}"
if [[ -n "${workspace}" && -d "${workspace}" ]]; then
  log "workspace size: $(du -sh "${workspace}" 2>/dev/null | cut -f1)"
fi
log "disk: $(df -h --output=used,avail "${HOME}" | tail -n 1)"

if command -v nvidia-smi >/dev/null 2>&1; then
  log "GPU state at job end"
  nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total,temperature.gpu \
    --format=csv || log "nvidia-smi failed"
fi

for dir in "${workspace}" "${RUNNER_TEMP:-}"; do
  if [[ -n "${dir}" && -d "${dir}" ]]; then
    find "${dir}" -mindepth 1 -delete
  fi
done
log "cleaned workspace and temp"
