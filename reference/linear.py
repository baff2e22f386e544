"""linear_cross_entropy: the cross-entropy of an LM head, sparse softmax cross-entropy of the
logits z = hidden @ weight.T + bias, with its gradients with respect to hidden, weight and bias,
and their conditioning scales.

The logits are computed accurately: the products of the inputs summed in double-double and
rounded once (within an ulp of the exact logits), so the reference owes nothing to the order
in which a matrix product sums. The loss on top, and every option it takes (ignore_index,
label_smoothing, class weights, z_loss, softcap, the reductions), is the sparse softmax
cross-entropy's own (reference/ops/softmax.py through the registry); its gradient with
respect to the logits, G, gives the others by the chain rule: G @ weight, G.T @ hidden and
the column sums of G.

Conditioning. A framework computes each logit as a dot product in the dtype under test: H
products and a sum, about (1 + ceil(log2 H)) roundings of sum_k |h_k| |w_vk| (pairwise
summation), one of |b_v| and one of |z_v|: that magnitude, D_v, is what the logits' rounding
touches. The loss scale adds sum_v |G_v| D_v to the cross-entropy's own; a gradient adds the
rounding of its own product (|G| and the inputs, over V or N terms) and what the logits'
rounding moves G by, bounded for one row by 2 max_v D_v (|G_v| + p_v sum_u |G_u|) (for one-hot
labels |J D|_v <= 2 max D |G_v|, J the softmax Jacobian scaled as G is; the second term
covers smoothed labels and the z-loss), through the same product.

Cost. For a float32, bfloat16 or float16 check the cross-entropy's values and scales come
from the fast tier (reference/numerics/fast_softmax.py and fast_scales.py: plain float64,
row blocks on threads, the loss and its scale from one pass, the gradient and its scale from
another); the scales above are plain float64 products of magnitudes, formed a block of rows
at a time (BLOCK_ELEMENTS), so beyond the logits, D, G and its scale they hold a few blocks.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import numpy.typing as npt

from reference.declaration import Op
from reference.option_declaration import taking
from reference.ops.softmax import SOFTCAP, Z_LOSS
from reference.options import IGNORE_INDEX, LABEL_SMOOTHING, REDUCTION, WEIGHT
from reference.numerics import doubledouble as dd

SPARSE = "sparse_softmax_cross_entropy"
OPTIONS = ("reduction", "ignore_index", "label_smoothing", "weight", "z_loss", "softcap", "sample_weight")
DOUBLE_DOUBLE_LIMIT = 1 << 24  # N x V x H products at most: past this, float64 products (see logits)
BLOCK_ELEMENTS = 1 << 22  # the scales' [rows, V] temporaries, a block of rows at a time (32 MiB each)

DECLARATION = Op(
    name="linear_cross_entropy", prediction="hidden", integer_labels=True, class_axis=False,
    options=taking(REDUCTION, LABEL_SMOOTHING, WEIGHT, IGNORE_INDEX, Z_LOSS, SOFTCAP),
    head=SPARSE, tensors=("linear_weight", "linear_bias"), optional_tensors=("linear_bias",),
)
DECLARATIONS = (DECLARATION,)
# The gradients a check asks for, by the input they are taken with respect to.
GRADIENTS = {"hidden": "grad_hidden", "linear_weight": "grad_weight", "linear_bias": "grad_bias"}


@dataclass(frozen=True)
class Linear:
    """Everything the checks of one linear_cross_entropy case ask for, in float64."""
    loss: np.ndarray
    loss_scale: np.ndarray
    grad_hidden: np.ndarray
    grad_hidden_scale: np.ndarray
    grad_weight: np.ndarray
    grad_weight_scale: np.ndarray
    grad_bias: np.ndarray
    grad_bias_scale: np.ndarray


def _roundings(terms: int) -> float:
    """Roundings of a product and a pairwise sum of that many terms."""
    return 1.0 + float(np.ceil(np.log2(max(terms, 1))))


def logits(hidden: npt.ArrayLike, weight: npt.ArrayLike,
           bias: npt.ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(z, D): the logits rounded once from their double-double value, and per logit the
    magnitude the dtype's rounding touches (module docstring). Float32 and narrower inputs
    have exact float64 products; past DOUBLE_DOUBLE_LIMIT they are summed in float64, within
    H 2^-53 sum |h w| of exact, which no float32 tolerance can see, so float64 checks of such
    a case are refused."""
    hidden, weight = np.asarray(hidden, np.float64), np.asarray(weight, np.float64)
    n, h = hidden.shape
    v = weight.shape[0]
    magnitude = np.abs(hidden) @ np.abs(weight).T
    if n * v * h <= DOUBLE_DOUBLE_LIMIT:
        total = dd.sum(dd.DD(*dd.two_prod(hidden[:, None, :], weight[None, :, :])), axis=-1)
        if bias is not None:
            total = dd.add(total, dd.of(np.broadcast_to(np.asarray(bias, np.float64), total.hi.shape)))
        z = total.hi  # the double-double rounded once
    else:
        z = hidden @ weight.T + (0.0 if bias is None else np.asarray(bias, np.float64))
    size = np.multiply(magnitude, _roundings(h), out=magnitude)  # in place: [N, V] arrays are large
    size += np.abs(z)
    if bias is not None:
        size += np.abs(np.asarray(bias, np.float64))
    return z, np.where(np.isinf(z), 0.0, size)  # a masked (-inf) logit stays -inf whatever the rounding


_EVALUATED: "OrderedDict[tuple, Linear]" = OrderedDict()  # the last few: a check asks for one quantity at a time


def _key(*values: object) -> tuple:
    def frozen(value: object) -> object:
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        array = np.asarray(value)
        return array.dtype.str, array.shape, array.tobytes()
    return tuple(frozen(v) for v in values)


def evaluate(hidden: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike | None, labels: npt.ArrayLike,
             options: Mapping[str, object], dtype: str, variant: str = "exact") -> Linear:
    """The loss (reduced as options['reduction'] says), the gradients of its sum with respect to
    hidden, weight and bias, and their scales; the loss on the logits as the sparse softmax
    cross-entropy's variant computes it (exact, or a label-smoothing convention)."""
    key = (_key(hidden, weight, bias, labels, dtype, variant),
           tuple(sorted((name, _key(value)) for name, value in options.items() if value is not None)))
    if key not in _EVALUATED:
        _EVALUATED[key] = _evaluate(hidden, weight, bias, labels, options, dtype, variant)
        while len(_EVALUATED) > 8:
            _EVALUATED.popitem(last=False)
    return _EVALUATED[key]


def _evaluate(hidden: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike | None, labels: npt.ArrayLike,
              options: Mapping[str, object], dtype: str, variant: str) -> Linear:
    """evaluate, uncached."""
    unknown = {name for name, value in options.items() if value is not None} - set(OPTIONS)
    if unknown:
        raise ValueError(f"linear_cross_entropy does not take the option(s) {sorted(unknown)} "
                         f"(it takes: {', '.join(OPTIONS)})")
    hidden, weight = np.asarray(hidden, np.float64), np.asarray(weight, np.float64)
    if dtype == "float64" and hidden.shape[0] * weight.shape[0] * hidden.shape[1] > DOUBLE_DOUBLE_LIMIT:
        raise ValueError(f"linear_cross_entropy in float64 needs at most {DOUBLE_DOUBLE_LIMIT} products "
                         "(N x V x H) for its double-double logits")
    z, size = logits(hidden, weight, bias)
    with np.errstate(invalid="ignore"):  # masked (-inf) logits: inf * 0 in terms np.where then drops
        return _on_logits(hidden, weight, z, size, labels, options, dtype, variant)


def _on_logits(hidden: np.ndarray, weight: np.ndarray, z: np.ndarray, size: np.ndarray, labels: npt.ArrayLike,
               options: Mapping[str, Any], dtype: str, variant: str) -> Linear:
    from reference import registry  # it registers this module's declaration

    inputs = {"logits": z, "labels": np.asarray(labels)}
    loss, loss_scale = registry.evaluate_loss_and_scale(SPARSE, variant, inputs, options, dtype)
    g, g_scale = registry.evaluate_grad(SPARSE, variant, inputs, options, dtype)
    rows, classes = z.shape
    abs_hidden, abs_weight = np.abs(hidden), np.abs(weight)
    per_row = np.empty(rows)
    grad_hidden_scale = np.empty(hidden.shape)
    grad_weight_scale = np.zeros(weight.shape)
    grad_bias_scale = np.zeros(classes)
    for block in _row_blocks(rows, classes):  # [rows, V] temporaries a block at a time
        own = np.abs(np.where(np.isfinite(g[block]), g[block], 0.0))
        per_row[block] = np.sum(own * size[block], axis=-1)  # the logits' rounding, through the loss
        moved = 2.0 * np.max(size[block], axis=-1, keepdims=True) * (
            own + _probabilities(z[block], options) * np.sum(own, axis=-1, keepdims=True))
        # what G itself carries; a masked (-inf) logit's G is exactly 0 and adds nothing to a product
        error = np.where(np.isneginf(z[block]), 0.0, g_scale[block] + moved)
        grad_hidden_scale[block] = (_roundings(classes) * own + error) @ abs_weight
        over_rows = _roundings(rows) * own + error
        grad_weight_scale += over_rows.T @ abs_hidden[block]
        grad_bias_scale += np.sum(over_rows, axis=0)
    through_logits = np.sum(per_row) if options.get("reduction", "none") != "none" else per_row
    loss_scale = loss_scale + through_logits
    return Linear(np.asarray(loss), np.asarray(loss_scale), g @ weight, grad_hidden_scale, g.T @ hidden,
                  grad_weight_scale, np.sum(g, axis=0), grad_bias_scale)


def _row_blocks(rows: int, classes: int) -> list[slice]:
    """Blocks of rows of about BLOCK_ELEMENTS logits."""
    step = max(1, BLOCK_ELEMENTS // max(classes, 1))
    return [slice(start, min(start + step, rows)) for start in range(0, rows, step)]


def _probabilities(z: np.ndarray, options: Mapping[str, Any]) -> np.ndarray:
    """softmax of the logits as the loss sees them (capped where softcap is set)."""
    cap = options.get("softcap")
    if cap:
        z = cap * np.tanh(z / cap)
    with np.errstate(invalid="ignore"):
        shifted = z - np.max(z, axis=-1, keepdims=True)
        e = np.exp(shifted)
        return np.nan_to_num(e / np.sum(e, axis=-1, keepdims=True))
