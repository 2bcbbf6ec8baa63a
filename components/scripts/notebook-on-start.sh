#!/bin/bash
# SageMaker notebook lifecycle configuration (on start): stop the instance after it has been idle.
#
# Self-contained: nothing is fetched from the internet (notebooks have no direct internet access).
# Installs a small idle checker and a cron entry that runs it every 5 minutes. "Idle" means no
# kernel is busy and no kernel or terminal activity for IDLE_STOP_MINUTES; the instance then stops
# itself through the SageMaker API (reached via the VPC endpoint), which keeps its EBS volume.
set -euo pipefail

IDLE_STOP_MINUTES=@IDLE_STOP_MINUTES@
CHECKER=/usr/local/bin/mlplatform-idle-check
LOG=/var/log/mlplatform-idle-check.log

if [ "${IDLE_STOP_MINUTES}" -le 0 ]; then
  echo "idle auto-stop disabled"
  exit 0
fi

cat > "${CHECKER}" <<'PYEOF'
#!/usr/bin/env python3
"""Stop this notebook instance when Jupyter has been idle for longer than the limit."""
import datetime
import json
import ssl
import subprocess
import sys
import urllib.request

limit = datetime.timedelta(minutes=int(sys.argv[1]))
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE  # Jupyter's self-signed certificate on localhost


def get(path):
    with urllib.request.urlopen("https://localhost:8443" + path, context=context, timeout=10) as r:
        return json.load(r)


def parse(stamp):
    return datetime.datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")


now = datetime.datetime.utcnow()
kernels = get("/api/kernels")
if any(k.get("execution_state") == "busy" for k in kernels):
    sys.exit(0)
stamps = [parse(k["last_activity"]) for k in kernels if k.get("last_activity")]
try:
    stamps += [parse(t["last_activity"]) for t in get("/api/terminals") if t.get("last_activity")]
except Exception:  # terminals API is optional
    pass
with open("/opt/ml/metadata/resource-metadata.json") as f:
    name = json.load(f)["ResourceName"]
if not stamps:
    # Nothing ever ran: count idleness from boot.
    with open("/proc/uptime") as f:
        stamps = [now - datetime.timedelta(seconds=float(f.read().split()[0]))]
idle = now - max(stamps)
print(f"{now.isoformat()} idle for {idle}, limit {limit}")
if idle > limit:
    subprocess.run(
        ["aws", "sagemaker", "stop-notebook-instance", "--notebook-instance-name", name],
        check=True,
    )
PYEOF
chmod 0755 "${CHECKER}"

echo "*/5 * * * * root /usr/bin/python3 ${CHECKER} ${IDLE_STOP_MINUTES} >> ${LOG} 2>&1" \
  > /etc/cron.d/mlplatform-idle-check
chmod 0644 /etc/cron.d/mlplatform-idle-check
echo "idle auto-stop after ${IDLE_STOP_MINUTES} minutes installed"
