"""The benchmark kernels of the built-in adapters, one module per adapter module
(conformance/adapters/X_adapter.py -> X_kernels.py here), found by Adapter.kernels()."""
