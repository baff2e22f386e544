"""The JAX side of framework jax-sharded, run in a process of its own (xent_sharded.jax_sharded
starts it): JAX reads the number of forced host devices from XLA_FLAGS once, when it is first
imported, so that process sets the flag before anything imports JAX.

Two ways a JAX user computes a cross-entropy over split inputs, each a mode:
- named_sharding: optax's loss under jax.jit, the inputs placed by NamedSharding; XLA's
  partitioner inserts the collectives;
- shard_map: the collectives written by hand in jax.shard_map, Megatron-style: on vocabulary
  shards a pmax of the row maxima, a psum of the sums of exponentials and a psum of the target
  logit found through each device's axis_index offset; on batch or sequence shards each device's
  own losses, and a mean that is the psum of the sums over the psum of the valid weights.

The class axis is last here (the adapter moves it). Inputs arrive as float64 holding values of
the dtype under test, results go back as float64 with the dtype JAX returned.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

AXIS_NAME = "ranks"
_JITTED: dict[tuple, Callable] = {}  # what is computed -> its jax.jit, compiled once per shape


def initialize(host_devices: int, cpu_only: bool) -> None:
    """The process initializer: the flags JAX reads at import, then JAX itself."""
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={host_devices}".strip()
    if cpu_only:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")  # no CUDA plug-in: skip probing for one
    import jax

    from conformance import compile_cache

    jax.config.update("jax_enable_x64", True)  # float64 is otherwise silently float32
    compile_cache.configure_jax(jax)


def describe() -> dict:
    """This process's id and how many devices of each kind JAX sees."""
    import jax

    counts = {}
    for device, platform in (("cpu", "cpu"), ("cuda", "gpu")):
        try:
            counts[device] = len(jax.devices(platform))
        except RuntimeError:  # no such backend
            counts[device] = 0
    return {"pid": os.getpid(), "devices": counts}


def compute(job: dict) -> dict:
    """Each mode's answer to one loss or gradient job: {"values", "dtype", "device", "per_rank"},
    or {"raised": "Type: message"} where JAX raised in that mode."""
    answers = {}
    for mode in job["modes"]:
        try:
            answers[mode] = _compute_mode(mode, job)
        except Exception as exc:  # noqa: BLE001 - the suite judges the raise of this mode
            answers[mode] = {"raised": f"{type(exc).__name__}: {exc}"}
    return answers


def _compute_mode(mode: str, job: dict) -> dict:
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh, NamedSharding

    axis, ranks = job["layout"]
    platform = "gpu" if job["device"] == "cuda" else "cpu"
    mesh = Mesh(np.array(jax.devices(platform)[:ranks]), (AXIS_NAME,))
    dtype = jnp.dtype(job["dtype"])
    prediction = np.asarray(job["prediction"])
    split = _split_axis(axis, prediction.ndim)
    x_spec, labels_spec = _specs(split, prediction.ndim)
    x = jax.device_put(jnp.asarray(prediction, dtype), NamedSharding(mesh, x_spec))
    labels = jax.device_put(jnp.asarray(job["labels"], jnp.int64), NamedSharding(mesh, labels_spec))
    options = job["options"]
    # the shape's rank and vocabulary are the function's constants (specs, smoothing's 1 / V)
    key = (mode, job["kind"], axis, ranks, job["device"], prediction.ndim, prediction.shape[-1],
           repr(sorted(options.items())), job["cotangent"] is None)
    if key not in _JITTED:
        loss = _loss_function(mode, options, mesh, split, x_spec, labels_spec, prediction.shape[-1])
        _JITTED[key] = jax.jit(loss if job["kind"] == "loss" else _differentiated(loss, job["cotangent"] is None))
    arguments = [x, labels]
    if job["kind"] == "gradient" and job["cotangent"] is not None:
        arguments.append(jnp.asarray(job["cotangent"], dtype))
    out = _JITTED[key](*arguments)
    per_rank = None
    if job["kind"] == "loss" and out.sharding.is_fully_replicated:
        order = {device: i for i, device in enumerate(mesh.devices.flat)}
        shards = sorted(out.addressable_shards, key=lambda shard: order[shard.device])
        per_rank = [np.asarray(shard.data.astype(jnp.float64)) for shard in shards]
    return {"values": np.asarray(out.astype(jnp.float64)), "dtype": str(out.dtype),
            "device": "cuda" if platform == "gpu" else "cpu", "per_rank": per_rank}


def _split_axis(axis: str, ndim: int) -> int:
    """The prediction's axis a layout splits, classes last (conformance.sharded.layouts' rule)."""
    from conformance.sharded.layouts import Layout

    return Layout(axis, 1).axis_index(ndim, -1)


def _specs(split: int, ndim: int) -> tuple[Any, Any]:
    """PartitionSpecs of the prediction and the labels (the prediction's axes less the classes)."""
    from jax.sharding import PartitionSpec

    x_spec = PartitionSpec(*(AXIS_NAME if i == split else None for i in range(ndim)))
    if split == ndim - 1:
        return x_spec, PartitionSpec()  # vocabulary shards: every device holds all the labels
    return x_spec, PartitionSpec(*(AXIS_NAME if i == split else None for i in range(ndim - 1)))


def _differentiated(loss: Callable, of_sum: bool) -> Callable:
    """d sum(loss) / d x, or the vector-Jacobian product with a cotangent, through jax.vjp."""
    import jax
    import jax.numpy as jnp

    if of_sum:
        return jax.grad(lambda x, labels: jnp.sum(loss(x, labels)))

    def product(x, labels, cotangent):
        out, pullback = jax.vjp(lambda value: loss(value, labels), x)
        return pullback(cotangent.astype(out.dtype))[0]
    return product


def _loss_function(mode: str, options: dict, mesh, split: int, x_spec, labels_spec, classes: int) -> Callable:
    """The reduced loss of (x, labels) placed by x_spec and labels_spec, as the mode computes it."""
    import jax
    from jax.sharding import PartitionSpec

    reduction = options.get("reduction", "none")
    if mode == "named_sharding":
        return lambda x, labels: _reduced(*example_losses(x, labels, options), reduction, options)
    if x_spec[-1] == AXIS_NAME:  # vocabulary shards: every device ends with every row's loss
        def on_shard(x, labels):
            return _reduced(*vocab_parallel_losses(x, labels, options, classes), reduction, options)
        return jax.shard_map(on_shard, mesh=mesh, in_specs=(x_spec, labels_spec), out_specs=PartitionSpec())

    def on_rows(x, labels):  # batch or sequence shards: each device's own rows, then their totals
        losses, weights = example_losses(x, labels, options)
        if reduction == "none":
            return losses
        total = jax.lax.psum(losses.sum(), AXIS_NAME)
        return total if reduction == "sum" else total / jax.lax.psum(weights.sum(), AXIS_NAME)
    out_spec = labels_spec if reduction == "none" else PartitionSpec()
    return jax.shard_map(on_rows, mesh=mesh, in_specs=(x_spec, labels_spec), out_specs=out_spec)


def _targets(labels, options: dict, dtype):
    """(valid, labels with the ignored ones at 0, each target's class weight or None)."""
    import jax.numpy as jnp

    ignore = options.get("ignore_index")
    valid = jnp.ones(labels.shape, bool) if ignore is None else labels != ignore
    safe = jnp.where(valid, labels, 0)
    weight = options.get("weight")
    return valid, safe, None if weight is None else jnp.asarray(weight, dtype)


def example_losses(x, labels, options: dict):
    """optax's per-example losses with the suite's options, as a JAX user composes them, and each
    example's weight in a mean (1 or its class weight; 0 where ignored)."""
    import jax
    import optax

    valid, safe, weight = _targets(labels, options, x.dtype)
    smoothing = float(options.get("label_smoothing") or 0.0)
    if smoothing or weight is not None:  # dense targets: (1 - s) one_hot + s / V, times the weights
        target = jax.nn.one_hot(safe, x.shape[-1], dtype=x.dtype)
        if smoothing:
            target = optax.smooth_labels(target, smoothing)
        losses = optax.softmax_cross_entropy(x, target if weight is None else target * weight)
    else:
        losses = optax.softmax_cross_entropy_with_integer_labels(x, safe)
    # the mask multiplied in, as flax weights its losses (under jit XLA makes a product with a
    # converted boolean a select, openxla/xla#2438: the gradient of a mean over no target is 0, not NaN)
    losses = losses * valid.astype(losses.dtype)
    return losses, _mean_weights(valid, safe, weight, losses.dtype)


def vocab_parallel_losses(x, labels, options: dict, classes: int):
    """Inside shard_map, x this device's [..., V / N] block of the logits: the per-example
    losses from collectives, computed in float32 at least and returned in x's dtype.

    loss = lse * Y - sum_c y_c z_c with y_c = ((1 - s) [c = t] + s / V) w_c and Y = sum_c y_c,
    z the logits less the row maximum."""
    import jax.numpy as jnp
    from jax import lax

    valid, safe, weight = _targets(labels, options, x.dtype)
    wide = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    local = wide.shape[-1]
    start = lax.axis_index(AXIS_NAME) * local
    peak = lax.pmax(lax.stop_gradient(wide.max(-1)), AXIS_NAME)
    z = wide - peak[..., None]
    lse = jnp.log(lax.psum(jnp.exp(z).sum(-1), AXIS_NAME))
    offset = safe - start
    here = (offset >= 0) & (offset < local)
    picked = jnp.take_along_axis(z, jnp.clip(offset, 0, local - 1)[..., None], -1)[..., 0]
    target_z = lax.psum(jnp.where(here, picked, 0.0), AXIS_NAME)
    smoothing = float(options.get("label_smoothing") or 0.0)
    if weight is None:
        losses = lse - (1.0 - smoothing) * target_z
        if smoothing:
            losses = losses - smoothing / classes * lax.psum(z.sum(-1), AXIS_NAME)
    else:
        w = weight.astype(wide.dtype)
        w_local = lax.dynamic_slice_in_dim(w, start, local)
        w_target = w[safe]
        mass = (1.0 - smoothing) * w_target + smoothing / classes * w.sum()
        losses = lse * mass - (1.0 - smoothing) * w_target * target_z
        if smoothing:
            losses = losses - smoothing / classes * lax.psum((z * w_local).sum(-1), AXIS_NAME)
    losses = (losses * valid.astype(losses.dtype)).astype(x.dtype)
    return losses, _mean_weights(valid, safe, weight, x.dtype)


def _mean_weights(valid, safe, weight, dtype):
    import jax.numpy as jnp

    if weight is None:
        return valid.astype(dtype)
    return jnp.where(valid, weight[safe], 0).astype(dtype)


def _reduced(losses, weights, reduction: str, options: dict):
    """The suite's reductions: a mean over ignored targets or class weights divides by the
    targets' weights (PyTorch's definition), else by the number of losses."""
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean":
        weighted = options.get("ignore_index") is not None or options.get("weight") is not None
        return losses.sum() / weights.sum() if weighted else losses.mean()
    return losses
