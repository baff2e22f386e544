"""The case-file schema, kept as data: keys, their types, whether they are required.

Values are (type, required, description). Types are names checked in cases.py:
str, int, bool, number, list, mapping, array (a literal array or a generator mapping).
"""
from conformance.core import quantities

FILE_KEYS = {
    "schema": ("int", True, "schema version, 1"),
    "description": ("str", False, "what the file holds"),
    "cases": ("list", True, "the cases"),
}

CASE_KEYS = {
    "name": ("str", True, "unique, lower-case words joined by '-' or '_'; no framework names"),
    "op": ("str", True, "a canonical op (reference/registry.py)"),
    "description": ("str", False, "what the case shows"),
    "inputs": ("mapping", True, "the op's prediction input and `labels`; linear_cross_entropy: `hidden` [N, H], "
                                "`linear_weight` [V, H], optional `linear_bias` [V] and `labels` [N]"),
    "options": ("mapping", False, "the op's options, each declared with the op in reference/ (`xent-conformance "
                                  "schema cases` lists them with their values and the ops that take them)"),
    "dtypes": ("list", False, "float dtypes to check, default [float32, float64]"),
    "grad": ("bool", False, "also check the gradient (default true where defined)"),
    "invalid_labels": ("bool", False, "labels outside their domain on purpose: integer labels outside [0, classes), "
                                      "binary targets outside [0, 1] (their loss is undefined: NaN)"),
    "invalid_probabilities": ("bool", False, "binary predicted probabilities outside [0, 1] on purpose (their loss is "
                                             "undefined: NaN)"),
    "pinned": ("list", False, "values stated by a source, each checked against the reference"),
    "layouts": ("list", False, "how the inputs are also split across ranks, each a mapping of one axis to a number "
                               "of ranks: {vocab: N} (the class axis), {batch: N} (the first axis), {sequence: N} "
                               "(the next); checked by the frameworks that take layouts, against the reference "
                               "of the whole inputs"),
}

PINNED_KEYS = {
    "value": ("number_or_list", True, "the number as the source printed it, or the array (nested lists, one "
                                      "number per element of the unreduced loss or of the gradient)"),
    "quantity": ("str", False, f"what the value is of: loss (default), {' or '.join(quantities.PINNABLE[1:])} "
                               f"(the gradient of the summed loss)"),
    "dtype": ("str", True, "the dtype the source computed in"),
    "variant": ("str", True, "the reference variant that explains the value"),
    "source": ("str", True, "where the number comes from"),
    "digits": ("int", False, "significant digits the source printed: the value is reproduced when it rounds "
                             "or truncates to the printed number (default: the number is exact to 4 ULP); "
                             "in an array, a printed 0 stands for 0"),
    "decimals": ("int", False, "decimal places the source printed (NumPy prints arrays so): reproduced when "
                               "rounding or truncating to them gives the printed number"),
    "rel": ("number", False, "the source's own relative tolerance (assert_allclose's rtol): reproduced within "
                             "abs + rel x |value|; instead of digits or decimals"),
    "abs": ("number", False, "the source's own absolute tolerance (atol); with or without rel"),
    "inexact": ("str", False, "why the source's number is wrong beyond its printed digits: the number is "
                              "judged and shown in the report's Sources, and no framework is held to it"),
}
PINNED_QUANTITIES = quantities.PINNABLE
MAX_PRINTED_DIGITS = 17  # a float64 needs at most 17 significant digits
MAX_PRINTED_DECIMALS = 30

GENERATOR_KEYS = {
    "generate": ("str", True, "normal, uniform, integers, simplex, bernoulli"),
    "shape": ("list", True, "array shape"),
    "seed": ("int", True, "seed of numpy.random.default_rng"),
    "mean": ("number", False, "normal: mean (default 0)"),
    "std": ("number", False, "normal: standard deviation (default 1)"),
    "low": ("number", False, "uniform / integers: lower bound (default 0)"),
    "high": ("number", False, "uniform: upper bound (default 1); integers: exclusive bound"),
    "offset": ("number", False, "added after drawing (a common logit shift)"),
    "axis": ("int", False, "simplex: the axis that sums to 1 (default -1)"),
}

GENERATORS = ("normal", "uniform", "integers", "simplex", "bernoulli")
DEFAULT_DTYPES = ("float32", "float64")
