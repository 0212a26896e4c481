"""An independent oracle of the numerics contract, written from the documented text.

The modules here implement the rules of `aipuc/numerics.py`'s docstring and of the
"Integer semantics" table in docs/quantization.md one element at a time, in Python `int`,
`fractions.Fraction` and `struct` arithmetic (int64 NumPy only for exact sums of small
integers). They import nothing from the code under test except the hardware numbers
(`aipuc.hardware.AIPU`), the float definitions of the LUT functions (which say *which*
function, not how it is rounded) and, in `graph`, the IR classes whose attributes they read.

- `ieee`: exact IEEE binary rounding; float32 arithmetic; float18 (struct bit manipulation).
- `quant`: quantize, dequantize, qparams, Q31 multipliers, requantization, LUTs.
- `softmax`: the DPU's float18 softmax.
- `ops`: the per-op integer semantics (convolutions, pools, elementwise, resize, pad, ...).
- `graph`: evaluates a quantized axq function op by op with the above.
"""
