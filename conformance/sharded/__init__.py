"""Sharded cross-entropy: layouts (how inputs are split across ranks), a pool of torch.distributed
ranks reused across checks, and the rank-side calls of the sharded implementations."""
