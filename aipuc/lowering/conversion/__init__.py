"""Patterns of `convert-axq-to-aipu`, one module per unit (MVM, DWPU, DPU, DMA)."""
