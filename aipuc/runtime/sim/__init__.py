"""The instruction-stream simulator: level 3 of the numerics contract.

It executes the records an emitted stream holds, against byte-addressed memories, and
nothing else: no IR, no axq graph. Its integer arithmetic calls `aipuc.numerics` and the
exact GEMM of `aipuc.runtime.kernels`, so its results equal the integer reference bit for bit
when (and only when) the compiler planned, tiled and addressed everything right.
"""
