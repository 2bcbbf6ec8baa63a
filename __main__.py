"""The mlplatform Pulumi program: stack config -> components -> outputs."""

import pulumi

from mlplatform.config import load_stack_config
from mlplatform.stack import build_platform

for key, value in build_platform(load_stack_config(), pulumi.get_stack()).items():
    pulumi.export(key, value)
