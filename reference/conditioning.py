"""How much honest floating-point arithmetic may move each result, in units of epsilon.

A scale S means: an implementation that rounds every intermediate once may be off by about
eps * S. S is the sum of the magnitudes that get rounded on the way, measured on
shift-invariant terms (max z - z_j, logsumexp(z - max z)), so a large common offset of the
logits does not buy tolerance. Exact operations (a hard 0/1 label times a value, 1 - p for
p >= 1/2) add nothing. The tolerance model multiplies S by a per-dtype factor.
"""
import numpy as np

from reference import losses


def is_hard(labels):
    """Labels of exactly 0 or 1 multiply without rounding."""
    return (labels == 0) | (labels == 1)


def summation(terms, axis=None):
    """Rounding of a sum of k terms: about log2(k) roundings of the running magnitude."""
    terms = np.abs(terms)
    k = terms.size if axis is None else terms.shape[axis]
    return np.sum(terms, axis=axis) * np.ceil(np.log2(max(k, 1)))


def sigmoid_cross_entropy(logits, labels, loss):
    """The logit's own sensitivity |sigmoid(z) - y| |z|, the z * y product for soft labels."""
    z = np.asarray(logits, np.float64)
    with np.errstate(invalid="ignore"):
        sens = np.abs(losses.sigmoid(z) - labels) * np.abs(z)
        soft = np.where(is_hard(labels), 0.0, np.abs(z * labels))
    return np.abs(loss) + np.nan_to_num(sens + soft, posinf=0.0)


def log_term(weight, argument, computed):
    """|w| (|log a| + 1 if a was rounded on the way): the log of a rounded value is off by eps."""
    with np.errstate(divide="ignore"):
        magnitude = np.abs(np.log(argument))
    return np.abs(losses.times(weight, magnitude + computed))


def binary_crossentropy(probs, labels, loss, p_computed=0.0):
    """Log terms of p and of 1 - p.

    1 - p is exact (Sterbenz) for p >= 1/2 and rounded once below. When p itself was computed
    (a sigmoid, a renormalisation) with relative error k eps, 1 - p inherits an absolute error
    k eps p, which is k eps p / (1 - p) relative: the cancellation every "sigmoid, then
    log(1 - p)" implementation pays near p = 1.
    """
    p = np.asarray(probs, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        inherited = np.where(p < 1.0, p_computed * p / (1.0 - p), 0.0)
    q_computed = np.where(p >= 0.5, 0.0, 1.0) + inherited
    return np.abs(loss) + log_term(labels, p, p_computed) + log_term(1.0 - labels, 1.0 - p, q_computed)


def softmax_terms(logits, axis):
    """Per class: 2 (max z - z_j) + logsumexp(z - max z) + 1, the magnitudes an lse rounds."""
    z = np.asarray(logits, np.float64)
    m = np.max(z, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(invalid="ignore"):
        gap = m - z
        lse = np.expand_dims(losses.logsumexp(z - m, axis), axis)
    return 2.0 * gap + lse + 1.0


def softmax_cross_entropy(logits, labels, loss, axis=-1):
    terms = losses.times(np.abs(labels), softmax_terms(logits, axis))
    return np.abs(loss) + np.sum(terms, axis=axis) + summation(terms, axis)


def sparse_softmax_cross_entropy(logits, labels, loss, axis=-1):
    terms = losses.take_class(softmax_terms(logits, axis), labels, axis)
    return np.abs(loss) + terms + np.log2(max(np.shape(logits)[axis], 2))


def categorical_crossentropy(probs, labels, loss, axis=-1, p_computed=0.0):
    terms = log_term(labels, probs, p_computed)
    return np.abs(loss) + np.sum(terms, axis=axis) + summation(terms, axis)


def sparse_categorical_crossentropy(probs, labels, loss, axis=-1, p_computed=0.0):
    p = losses.take_class(np.asarray(probs, np.float64), labels, axis)
    return np.abs(loss) + log_term(1.0, p, p_computed)


def mean_squared_error(loss):
    """fl(a - y) is off by eps relative, squaring doubles it: a few eps of the result."""
    return 3.0 * np.abs(loss)


# Gradient scales ---------------------------------------------------------------------------


def sigmoid_grad(logits, labels):
    """sigmoid(z) - y: the sigmoid's rounding and the subtraction.

    Autodiff through log_sigmoid or softplus evaluates the sigmoid as exp(z - softplus(z)),
    whose exponent is rounded at the magnitude of z: relative error eps |z| in sigmoid(z),
    the analogue of exp(z_j - lse) in the softmax gradient.
    """
    a = losses.sigmoid(logits)
    z = np.nan_to_num(np.abs(np.asarray(logits, np.float64)), posinf=0.0)
    return a * (1.0 + z) + np.abs(labels)


def softmax_grad(logits, labels, axis=-1):
    """p_j sum(y) - y_j: p_j = exp(z_j - lse) carries the rounding of its exponent."""
    z = np.asarray(logits, np.float64)
    p = np.exp(losses.log_softmax(z, axis))
    total = np.abs(np.sum(labels, axis=axis, keepdims=True))
    return p * total * softmax_terms(z, axis) + np.abs(labels)


def sparse_softmax_grad(logits, labels, axis=-1):
    """p_j - [j == label]: the subtraction at the label rounds at magnitude 1."""
    z = np.asarray(logits, np.float64)
    p = np.exp(losses.log_softmax(z, axis))
    onehot = np.zeros_like(p)
    np.put_along_axis(onehot, np.expand_dims(np.asarray(labels, np.int64), axis), 1.0, axis=axis)
    return p * softmax_terms(z, axis) + onehot


def squared_error_grad(predictions, labels):
    return 2.0 * np.abs(np.asarray(predictions, np.float64) - labels)
