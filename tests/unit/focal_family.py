"""An op family as a new contributor writes one: a plain op with two options of its own,
declared once beside the op (test_option_declarations.py registers it and checks that the
loader, the JSON Schema and the conditions follow from the declarations)."""
import numpy as np

from reference.declaration import Op, Variant
from reference.numerics.sigmoid import log_sigmoid, sigmoid
from reference.option_declaration import Option, taking
from reference.options import REDUCTION

GAMMA = Option(name="gamma", kind="number", minimum=0.0, default=2.0,
               description="the focusing exponent: (1 - p_t)^gamma weighs each example")
ALPHA = Option(name="alpha", kind="number", minimum=0.0, maximum=1.0, default=0.25,
               description="the positive class's weight, 1 - alpha the negative's")


def focal_loss(z, y, dtype, gamma, alpha):
    """-alpha y (1 - p)^gamma log p - (1 - alpha) (1 - y) p^gamma log(1 - p), p = sigmoid(z)."""
    p = sigmoid(z)
    return (-alpha * y * (1.0 - p) ** gamma * log_sigmoid(z)
            - (1.0 - alpha) * (1.0 - y) * p ** gamma * log_sigmoid(-z))


SIGMOID_FOCAL_LOSS = Op(
    name="sigmoid_focal_loss", prediction="logits", integer_labels=False, class_axis=False,
    options=taking(REDUCTION, GAMMA, ALPHA),
    variants={"exact": Variant(loss=focal_loss,
                               scale=lambda z, y, loss, dtype, gamma, alpha: np.abs(loss))},
)

DECLARATIONS = (SIGMOID_FOCAL_LOSS,)
