#!/usr/bin/env bash
# Entry point of the training image: check what EFA needs from the container runtime, then run
# the command (torchrun, hyperpodrun, or anything else) as this process so it receives SIGTERM
# directly (HyperPod's elastic agent and Kubernetes stop jobs with it).
set -euo pipefail

# EFA registers (pins) memory: libfabric fails with "Cannot allocate memory" when the locked
# memory limit is small. Kubernetes on the EKS and HyperPod AMIs sets it unlimited; with plain
# docker, pass `--ulimit memlock=-1:-1`.
efa_devices="${MLPLATFORM_EFA_DEVICES:-/dev/infiniband/uverbs*}"
if compgen -G "${efa_devices}" > /dev/null; then
    memlock="$(ulimit -l)"
    if [[ "${memlock}" != "unlimited" ]]; then
        echo "entrypoint: warning: EFA device present but 'ulimit -l' is ${memlock} KiB;" \
            "run with an unlimited memlock limit (docker: --ulimit memlock=-1:-1)" >&2
    fi
fi

if [[ $# -eq 0 ]]; then
    set -- torchrun --help
fi
exec "$@"
