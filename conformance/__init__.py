"""xent-conformance: does this implementation of cross-entropy compute the same loss, and the
same gradient, as the mathematics and as the other frameworks, for the same inputs?"""
from conformance.frameworks import BUILTIN_IDS as FRAMEWORK_IDS
from conformance.frameworks import KERAS_BACKENDS, RESERVED_WORDS

__version__ = "0.2.0"
__all__ = ["FRAMEWORK_IDS", "KERAS_BACKENDS", "RESERVED_WORDS", "__version__"]
