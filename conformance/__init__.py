"""xent-conformance: do TensorFlow, Keras, PyTorch and JAX compute the same cross-entropy?"""

FRAMEWORK_IDS = (
    "numpy",
    "tensorflow",
    "torch",
    "jax",
    "keras-tensorflow",
    "keras-jax",
    "keras-torch",
    "keras-numpy",
    "tf_keras",
)
KERAS_BACKENDS = ("tensorflow", "jax", "torch", "numpy")
# Words a case name may not contain, so that `pytest -k NAME` selects by framework only.
RESERVED_WORDS = ("numpy", "tensorflow", "torch", "jax", "keras")
