"""mlplatform: ML infrastructure as code for AWS and the training core that runs on it.

One distribution, one namespace: `mlplatform.components` (the reusable ComponentResources,
`components/` in the checkout), `mlplatform.training` (the FSDP training core, `training/`), and
here, the program's own tooling: the stack config and builder, the offline plan, pricing, mocks,
guardrails, manifest rendering, job submission and the `mlplatform` command line.
"""

from importlib import metadata

try:
    __version__ = metadata.version("mlplatform")
except metadata.PackageNotFoundError:  # a checkout on sys.path without an install
    __version__ = "0+unknown"
