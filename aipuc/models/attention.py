"""A BERT-style transformer encoder block on [1, 64 tokens, 128]: multi-head self-attention with
the Reshape/Transpose head plumbing, then a GELU MLP, each with a residual Add and a LayerNorm
spelled out in primitive ops, the way exported transformers reach a compiler."""

from __future__ import annotations

import math

import onnx

from aipuc.models.builder import EMBEDDINGS, GraphBuilder, Tensor

TOKENS, DIM, HEADS, MLP_DIM = 64, 128, 4, 512
HEAD_DIM = DIM // HEADS
INPUT_SHAPE = (1, TOKENS, DIM)


def _heads(b: GraphBuilder, x: Tensor, perm: list[int], name: str) -> Tensor:
    """[1, T, D] -> [1, H, T, Dh] (or [1, H, Dh, T] for keys, ready for Q @ K^T)."""
    with b.scope(name):
        return b.transpose(b.reshape(x, [1, TOKENS, HEADS, HEAD_DIM]), perm)


def _self_attention(b: GraphBuilder, x: Tensor) -> Tensor:
    with b.scope("attention"):
        # gain 3 on queries and keys gives peaked attention rows, as in trained models
        q = _heads(b, b.linear(x, DIM, gain=3.0, name="query"), [0, 2, 1, 3], "query.heads")
        k = _heads(b, b.linear(x, DIM, gain=3.0, name="key"), [0, 2, 3, 1], "key.heads")
        v = _heads(b, b.linear(x, DIM, name="value"), [0, 2, 1, 3], "value.heads")
        scores = b.mul(b.matmul(q, k, "scores"), 1.0 / math.sqrt(HEAD_DIM), "scale")
        context = b.matmul(b.softmax(scores, axis=-1), v, "context")
        context = b.transpose(context, [0, 2, 1, 3], "merge.transpose")
        context = b.reshape(context, [1, TOKENS, DIM], "merge.reshape")
        return b.linear(context, DIM, name="output")


def attention_block(seed: int = 3) -> onnx.ModelProto:
    b = GraphBuilder("attention_block", seed)
    x = b.input("input", INPUT_SHAPE, EMBEDDINGS)
    x = b.layer_norm(b.add(x, _self_attention(b, x), "attention.residual"), "attention.norm")
    with b.scope("mlp"):
        h = b.gelu(b.linear(x, MLP_DIM, name="fc1"))
        h = b.linear(h, DIM, gain=2.0, name="fc2")
    x = b.layer_norm(b.add(x, h, "mlp.residual"), "mlp.norm")
    b.output(x, "output")
    return b.model("attention_block: BERT-style encoder block (4 heads, dim 128, 64 tokens)")
