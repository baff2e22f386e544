"""A hand-written sparse softmax cross-entropy kernel (forward and backward) in NumPy."""
