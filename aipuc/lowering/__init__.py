"""Lowering: the legal quantized axq graph to layers, buffers and the instruction stream.

One pass per file, each an xdsl-opt pass named after its file (`convert_axq_to_aipu.py` is
`convert-axq-to-aipu`); `aipuc.pipeline` builds them from a CompilerConfig.
"""
