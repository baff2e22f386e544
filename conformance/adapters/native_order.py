"""Native libraries that must load in one order in a process: Triton before TensorFlow.

Both link their own LLVM. Triton's, loaded after TensorFlow's, registers LLVM's command-line
options a second time and aborts the whole process ("LLVM ERROR: inconsistency in registered
CommandLine options"); loaded first, both work. torch.compile imports Triton where it is
installed (PyTorch's CUDA wheels bring it, and so do the fused-kernel plug-ins), so every
adapter that loads TensorFlow or tf-keras calls this first.
"""


def load_triton_first() -> None:
    try:
        import triton  # noqa: F401
    except Exception:  # noqa: BLE001 - absent, or unusable here: then nothing of it will load later
        pass
