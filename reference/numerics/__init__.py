"""Numerics the op families share: double-double arithmetic, products and logs with the
entropy conventions, the accurate pieces of a sigmoid and a softmax, and the rounding
measures that conditioning scales are built from."""
