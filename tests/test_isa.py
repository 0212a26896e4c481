"""The instruction encoding: decode(encode(x)) == x for random records of every opcode and
random micro-ops of every micro-opcode; docs/isa.md is the rendering of the table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aipuc.runtime.sim import isa, isa_doc
from aipuc.runtime.sim.isa import FORMATS, MICRO_OP_FIELDS, Field, Instruction, MicroOp

DOC = Path(__file__).parent.parent / "docs" / "isa.md"


def _values(field: Field) -> st.SearchStrategy:
    info = np.iinfo(np.dtype(field.type))
    scalar = st.integers(int(info.min), int(info.max))
    return scalar if field.count == 1 else st.tuples(*[scalar] * field.count)


def _instructions(opcode: isa.Opcode) -> st.SearchStrategy[Instruction]:
    fields = st.fixed_dictionaries({f.name: _values(f) for f in FORMATS[opcode]})
    return st.builds(Instruction, st.just(opcode), fields, st.integers(0, 255), st.integers(0, 3))


@pytest.mark.parametrize("opcode", list(isa.Opcode))
@given(data=st.data())
def test_every_opcode_round_trips(opcode, data):
    instructions = data.draw(st.lists(_instructions(opcode), min_size=1, max_size=4))
    encoded = isa.encode_stream(instructions)
    assert len(encoded) == isa.RECORD_BYTES * len(instructions)
    assert isa.decode(encoded) == instructions
    assert isa.encode_stream(isa.decode(encoded)) == encoded


@given(st.lists(st.sampled_from(list(isa.Opcode)).flatmap(_instructions), max_size=12))
def test_mixed_streams_round_trip(instructions):
    assert isa.decode(isa.encode_stream(instructions)) == instructions


@pytest.mark.parametrize("micro", list(isa.MicroOpcode))
@given(data=st.data())
def test_every_micro_op_round_trips(micro, data):
    values = {f.name: data.draw(_values(f)) for f in MICRO_OP_FIELDS if f.name != "op"}
    ops = [MicroOp(micro, **values), MicroOp(micro)]
    words = isa.encode_micro_ops(ops)
    assert len(words) == 2 * isa.MICRO_OP_BYTES
    assert isa.decode_program(words) == ops


def test_records_and_words_have_their_documented_size():
    assert all(dtype.itemsize == isa.RECORD_BYTES for dtype in isa.DTYPES.values())
    assert isa.MICRO_OP.itemsize == isa.MICRO_OP_BYTES
    assert set(isa.OPCODE_SEMANTICS) == set(isa.Opcode)
    assert set(isa.MICRO_SEMANTICS) == set(isa.MicroOpcode)


def test_unknown_fields_are_an_error():
    with pytest.raises(ValueError, match="DMA has no field"):
        Instruction(isa.Opcode.DMA, {"weightset": 1})


def test_isa_doc_is_generated_from_the_table():
    assert DOC.read_text() == isa_doc.render(), (
        "docs/isa.md is stale: python -m aipuc.runtime.sim.isa_doc > docs/isa.md"
    )
    for opcode in isa.Opcode:
        assert f"### {opcode.name} (0x{opcode.value:02x})" in DOC.read_text()
