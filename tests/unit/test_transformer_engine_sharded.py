"""TransformerEngine's parallel cross-entropy (framework transformer-engine): its package needs a
GPU to import, so without CUDA every check is not offered, with that reason, and no rank starts."""
import numpy as np
import pytest

pytest.importorskip("torch")
import torch  # noqa: E402

from conformance.adapters.api import NotOffered  # noqa: E402
from conformance.sharded.layouts import Layout  # noqa: E402
from tests.unit import sharded_plugin  # noqa: E402

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA it runs TransformerEngine itself")


def test_without_a_gpu_it_is_not_offered_with_the_reason_and_starts_no_rank():
    with sharded_plugin.started("xent_sharded.transformer_engine_adapter", "TransformerEngineAdapter") as adapter:
        assert adapter.devices() == ("cpu",)
        logits, labels = sharded_plugin.float32_values((2, 4), 3), np.array([0, 3])
        with pytest.raises(NotOffered, match="needs a CUDA GPU"):
            adapter.loss("sparse_softmax_cross_entropy", logits, labels, {}, "float32", "cpu",
                         layout=Layout("vocab", 2))
        assert adapter._pools == {}
