"""Adapters for fused cross-entropy kernels of LLM training, as xent-conformance plug-ins."""
