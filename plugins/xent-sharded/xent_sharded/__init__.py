"""Adapters for sharded cross-entropy (inputs split across torch.distributed ranks), as
xent-conformance plug-ins."""
from pathlib import Path

# The known divergences of these implementations, read by the suite through the entry point
# `xent_conformance.manifests` (importing this module imports no framework).
MANIFEST = Path(__file__).with_name("divergences.yaml")
