"""Which devices this machine has, asked of the operating system, never of a framework: the
suite decides before importing any framework which checks can run here at all."""
import os

# Device files a CUDA (or ROCm, which PyTorch also calls cuda) driver creates; WSL2 exposes its
# GPUs through /dev/dxg. Any one of them present means the frameworks must be asked.
_ACCELERATOR_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia/version", "/dev/kfd", "/dev/dxg")


def might_have(device: str) -> bool:
    """False only when no framework can see the device on this machine; True when the
    frameworks must be asked (their adapters decide, check by check)."""
    return device != "cuda" or any(os.path.exists(path) for path in _ACCELERATOR_FILES)
