"""The `mem` dialect: pools, buffers and tile views of the AIPU memory hierarchy.

Memory is typed, so every op that touches memory can check space, shape and element type at
its use site without chasing definitions:

- `!mem.buffer<1x56x56x64xi8, global.l1>`: a whole allocation, an NHWC array (in elements) of
  an element type in one memory space (`aipuc.hardware.MemorySpace`, spelled as in the config).
- `!mem.view<1x4x56x64xi8, global.l1>`: a tile window of a buffer; its shape is the tile size.

Builtin `memref` is not reused: tile windows would need strided layouts with dynamic offsets
(`memref<1x4x56x64xi8, strided<[200704, 3584, 64, 1], offset: ?>, #mem<space global.l1>>`),
which is long to read, and xDSL's memref passes would misread memrefs in AIPU memory spaces.

Pools are symbols (`mem.pool @l1_core0 global.l1 core 0 capacity ...`); buffers are SSA
values planned into a pool (`mem.buffer @l1_core0 size ... align ... offset ...`), and views
are windows whose offsets are affine in the induction variables of enclosing tile loops
(`mem.view %b[0, 4 * %i, 0, 0]`), so IR size grows with ops, not with tiles. A buffer lives
from its first to its last use in program order; there is no alloc/dealloc.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Mapping, Sequence

from xdsl.dialects.builtin import (
    I64,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    FixedBitwidthType,
    IndexType,
    IntegerAttr,
    StringAttr,
    SymbolNameConstraint,
    SymbolRefAttr,
    i64,
)
from xdsl.dialects.utils.enum_attribute import EnumAttribute
from xdsl.ir import (
    Attribute,
    BlockArgument,
    Dialect,
    Operation,
    ParametrizedAttribute,
    SpacedOpaqueSyntaxAttribute,
    SSAValue,
    TypeAttribute,
)
from xdsl.irdl import (
    IRDLOperation,
    base,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import AttrParser, Parser, UnresolvedOperand
from xdsl.printer import Printer
from xdsl.traits import OpTrait, SymbolOpInterface, SymbolTable
from xdsl.utils.exceptions import VerifyException

from aipuc.hardware import AIPU, MemorySpace


@functools.lru_cache(maxsize=4096)
def _i64_array(values: tuple[int, ...]) -> DenseArrayBase:
    """An i64 array attribute. Attributes are immutable, so equal ones are shared: building
    one (normalising, packing, verifying) is a hot spot of bufferization."""
    return DenseArrayBase.from_list(i64, values)


@irdl_attr_definition
class MemorySpaceAttr(EnumAttribute[MemorySpace], SpacedOpaqueSyntaxAttribute):
    """A memory level of the AIPU: `#mem<space global.l1>`."""

    name = "mem.space"


class MemoryType(ParametrizedAttribute, TypeAttribute):
    """Shared parts of buffer and view types: `<1x56x56x64xi8, global.l1>`."""

    shape: DenseArrayBase[I64]
    element_type: FixedBitwidthType
    memory_space: MemorySpaceAttr

    def __init__(
        self,
        shape: Sequence[int],
        element_type: FixedBitwidthType,
        space: MemorySpace | MemorySpaceAttr,
    ):
        if not isinstance(space, MemorySpaceAttr):
            space = MemorySpaceAttr(space)
        super().__init__(_i64_array(tuple(shape)), element_type, space)

    def get_shape(self) -> tuple[int, ...]:
        return tuple(self.shape.iter_values())

    def get_element_type(self) -> FixedBitwidthType:
        return self.element_type

    @property
    def space(self) -> MemorySpace:
        return self.memory_space.data

    @property
    def element_count(self) -> int:
        count = 1
        for dim in self.get_shape():
            count *= dim
        return count

    @property
    def nbytes(self) -> int:
        """Bytes of the elements, densely packed."""
        return self.element_count * self.element_type.size

    def verify(self) -> None:
        shape = self.get_shape()
        if not shape or any(dim < 1 for dim in shape):
            raise VerifyException(f"{self.name} needs a static shape of positive sizes")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        with parser.in_angle_brackets():
            shape, element_type = parser.parse_ranked_shape()
            parser.parse_punctuation(",")
            space = parser.parse_str_enum(MemorySpace)
        return [DenseArrayBase.from_list(i64, shape), element_type, MemorySpaceAttr(space)]

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_dimension_list(self.get_shape())
            printer.print_string("x")
            printer.print_attribute(self.element_type)
            printer.print_string(", ")
            self.memory_space.print_parameter(printer)


@irdl_attr_definition
class BufferType(MemoryType):
    """A whole buffer: an NHWC array in one memory space."""

    name = "mem.buffer"


@irdl_attr_definition
class ViewType(MemoryType):
    """A tile window of a buffer; its shape is the tile size."""

    name = "mem.view"


AnyMemoryType = base(BufferType) | base(ViewType)
"""What compute and DMA ops read and write: a whole buffer or a view of one."""


class InductionRange(OpTrait, abc.ABC):
    """An op whose region's index arguments take a known range of values (a tile loop).

    `mem.view` asks it to check that the window stays in bounds for every iteration."""

    @abc.abstractmethod
    def get_range(self, op: Operation, arg: BlockArgument) -> tuple[int, int] | None:
        """The smallest and largest value of `arg`, if `arg` is an induction variable of op."""


def induction_range(value: SSAValue) -> tuple[int, int] | None:
    """The range of an induction variable, or None if it is not one of a known loop."""
    if not isinstance(value, BlockArgument):
        return None
    owner = value.block.parent_op()
    if owner is None or (trait := owner.get_trait(InductionRange)) is None:
        return None
    return trait.get_range(owner, value)


@irdl_op_definition
class PoolOp(IRDLOperation):
    """A memory pool: DDR, L2, or the L1 of one core, that the memory planner fills."""

    name = "mem.pool"

    sym_name = prop_def(SymbolNameConstraint())
    space = prop_def(MemorySpaceAttr)
    core = opt_prop_def(IntegerAttr[I64])
    """The core whose L1 this is; only (and always) for L1 pools."""
    capacity = prop_def(IntegerAttr[I64])
    """Usable bytes."""
    page_size = opt_prop_def(IntegerAttr[I64])
    """Bytes per page when the pool is paged (`page_memory`)."""
    address = opt_prop_def(IntegerAttr[I64])
    """Device address of offset 0 (the memory map); set with the pools' capacities."""
    pages = opt_prop_def(DenseArrayBase.constr(i64))
    """A paged pool's page table, set by the memory planner: the physical page behind each
    virtual page (buffer offsets are virtual), -1 for a page no buffer uses. Virtual pages
    whose buffers are never alive at once may share a physical page."""

    traits = traits_def(SymbolOpInterface())

    assembly_format = (
        "$sym_name $space (`core` $core^)? `capacity` $capacity (`page` $page_size^)?"
        " (`at` $address^)? (`pages` $pages^)? attr-dict"
    )

    def __init__(
        self,
        sym_name: str,
        space: MemorySpace,
        capacity: int,
        *,
        core: int | None = None,
        page_size: int | None = None,
        address: int | None = None,
    ):
        super().__init__(
            properties={
                "sym_name": StringAttr(sym_name),
                "space": MemorySpaceAttr(space),
                "core": None if core is None else IntegerAttr(core, i64),
                "capacity": IntegerAttr(capacity, i64),
                "page_size": None if page_size is None else IntegerAttr(page_size, i64),
                "address": None if address is None else IntegerAttr(address, i64),
            }
        )

    def verify_(self) -> None:
        is_l1 = self.space.data == MemorySpace.L1
        if is_l1 != (self.core is not None):
            raise VerifyException("an L1 pool belongs to one core: give `core` for L1 only")
        if self.core is not None and not 0 <= self.core.value.data < AIPU.cores:
            raise VerifyException(
                f"core {self.core.value.data} out of range: the AIPU has {AIPU.cores} cores"
            )
        capacity = self.capacity.value.data
        if capacity < 1:
            raise VerifyException(f"pool capacity must be positive, got {capacity}")
        if self.page_size is not None and not 0 < self.page_size.value.data <= capacity:
            raise VerifyException(
                f"page size must be in 1..capacity ({capacity}), got {self.page_size.value.data}"
            )
        if self.pages is not None:
            if self.page_size is None:
                raise VerifyException("only a paged pool (with `page`) has a page table")
            frames = capacity // self.page_size.value.data
            table = self.pages.get_values()
            if any(not -1 <= frame < frames for frame in table):
                raise VerifyException(
                    f"page table entries must be physical pages 0..{frames - 1} or -1"
                )


@irdl_op_definition
class BufferOp(IRDLOperation):
    """A buffer in a pool: byte size, alignment, and the offset the memory planner chose."""

    name = "mem.buffer"

    pool = prop_def(SymbolRefAttr)
    size = prop_def(IntegerAttr[I64])
    """Bytes reserved, at least the dense size of the type."""
    alignment = prop_def(IntegerAttr[I64])
    offset = opt_prop_def(IntegerAttr[I64])
    """Byte offset in the pool; absent until memory planning."""
    init = opt_prop_def(DenseIntOrFPElementsAttr)
    """Constant contents (weights, tables) the loader places before the stream runs."""
    buffer = result_def(BufferType)

    assembly_format = (
        "$pool `size` $size `align` $alignment (`offset` $offset^)? (`init` $init^)? attr-dict"
        " `:` type($buffer)"
    )

    def __init__(
        self,
        pool: str | SymbolRefAttr,
        buffer_type: BufferType,
        *,
        size: int | None = None,
        alignment: int = AIPU.pword_bytes,
        offset: int | None = None,
        init: DenseIntOrFPElementsAttr | None = None,
    ):
        if isinstance(pool, str):
            pool = SymbolRefAttr(pool)
        super().__init__(
            properties={
                "pool": pool,
                "size": IntegerAttr(buffer_type.nbytes if size is None else size, i64),
                "alignment": IntegerAttr(alignment, i64),
                "offset": None if offset is None else IntegerAttr(offset, i64),
                "init": init,
            },
            result_types=[buffer_type],
        )

    @property
    def buffer_type(self) -> BufferType:
        assert isinstance(self.buffer.type, BufferType)
        return self.buffer.type

    def get_pool(self) -> PoolOp | None:
        """The pool this buffer lives in, or None if the op is not in a symbol table."""
        try:
            pool = SymbolTable.lookup_symbol(self, self.pool)
        except ValueError:
            return None
        if not isinstance(pool, PoolOp):
            raise VerifyException(f"{self.pool} does not name a mem.pool")
        return pool

    def verify_(self) -> None:
        size = self.size.value.data
        align = self.alignment.value.data
        if size < self.buffer_type.nbytes:
            raise VerifyException(
                f"size {size} is smaller than the {self.buffer_type.nbytes} bytes of the type"
            )
        if align < 1 or align & (align - 1):
            raise VerifyException(f"alignment must be a power of two, got {align}")
        offset = None if self.offset is None else self.offset.value.data
        if offset is not None and (offset < 0 or offset % align):
            raise VerifyException(f"offset {offset} is not a multiple of alignment {align}")
        pool = self.get_pool()
        if pool is None:
            return
        if pool.space.data != self.buffer_type.space:
            raise VerifyException(
                f"buffer in {self.buffer_type.space} but pool {self.pool} is {pool.space.data}"
            )
        capacity = pool.capacity.value.data
        if offset is not None and offset + size > capacity:
            raise VerifyException(
                f"buffer [{offset}, {offset + size}) overflows pool {self.pool} of {capacity} bytes"
            )


@irdl_op_definition
class ViewOp(IRDLOperation):
    """A tile window of a buffer, read or written by one task per tile.

    The offset of each dimension (in elements) is a constant plus multiples of induction
    variables: `mem.view %b[0, 4 * %i - 1, 0, 64 * %j] strides [1, 2, 2, 1]`. The tile size
    is the shape of the result type; strides step through the buffer (default 1).
    """

    name = "mem.view"

    source = operand_def(BufferType)
    ivs = var_operand_def(IndexType)
    static_offsets = prop_def(DenseArrayBase.constr(i64))
    """Offset of each dimension when every induction variable is zero."""
    coefficients = prop_def(DenseArrayBase.constr(i64))
    """Row-major [len(ivs), rank]: how far each induction variable moves each dimension."""
    strides = prop_def(DenseArrayBase.constr(i64))
    result = result_def(ViewType)

    def __init__(
        self,
        source: SSAValue | Operation,
        offsets: Sequence[int],
        sizes: Sequence[int],
        *,
        strides: Sequence[int] | None = None,
        steps: Mapping[SSAValue, Sequence[int]] | None = None,
    ):
        """`steps` maps each induction variable to how far it moves each dimension."""
        source_type = SSAValue.get(source).type
        assert isinstance(source_type, BufferType)
        steps = steps or {}
        super().__init__(
            operands=[source, list(steps)],
            properties={
                "static_offsets": _i64_array(tuple(offsets)),
                "coefficients": _i64_array(tuple(c for coeffs in steps.values() for c in coeffs)),
                "strides": _i64_array(tuple([1] * len(sizes) if strides is None else strides)),
            },
            result_types=[ViewType(sizes, source_type.element_type, source_type.memory_space)],
        )

    @property
    def source_type(self) -> BufferType:
        assert isinstance(self.source.type, BufferType)
        return self.source.type

    @property
    def view_type(self) -> ViewType:
        assert isinstance(self.result.type, ViewType)
        return self.result.type

    def offset_terms(self) -> list[list[tuple[int, SSAValue]]]:
        """Per dimension, the (coefficient, induction variable) pairs with a nonzero coefficient."""
        rank = len(self.static_offsets)
        coeffs = tuple(self.coefficients.iter_values())
        return [
            [(coeffs[k * rank + d], iv) for k, iv in enumerate(self.ivs) if coeffs[k * rank + d]]
            for d in range(rank)
        ]

    def verify_(self) -> None:
        src, dst = self.source_type, self.view_type
        shape, sizes = src.get_shape(), dst.get_shape()
        offsets = tuple(self.static_offsets.iter_values())
        strides = tuple(self.strides.iter_values())
        rank = len(shape)
        if not len(sizes) == len(offsets) == len(strides) == rank:
            raise VerifyException(
                f"view of a rank-{rank} buffer needs {rank} offsets, sizes and strides"
            )
        if len(self.coefficients) != len(self.ivs) * rank:
            raise VerifyException(f"expected {len(self.ivs) * rank} coefficients")
        if (src.element_type, src.memory_space) != (dst.element_type, dst.memory_space):
            raise VerifyException("a view has the element type and memory space of its buffer")
        if any(stride < 1 for stride in strides):
            raise VerifyException(f"strides must be positive, got {list(strides)}")
        if len(set(self.ivs)) != len(self.ivs):
            raise VerifyException("each induction variable appears once")
        terms = self.offset_terms()
        used = {iv for dim_terms in terms for _, iv in dim_terms}
        if len(used) != len(self.ivs):
            raise VerifyException("every induction variable needs a nonzero coefficient")
        ranges = {iv: induction_range(iv) for iv in self.ivs}
        for d in range(rank):
            if any(ranges[iv] is None for _, iv in terms[d]):
                continue  # an induction variable of unknown range: checked where it is known
            low = high = offsets[d]
            for coeff, iv in terms[d]:
                first, last = ranges[iv] or (0, 0)
                low += min(coeff * first, coeff * last)
                high += max(coeff * first, coeff * last)
            end = high + (sizes[d] - 1) * strides[d]
            if low < 0 or end >= shape[d]:
                raise VerifyException(
                    f"view out of bounds in dimension {d}: elements {low}..{end} "
                    f"of a buffer of size {shape[d]}"
                )

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.source)
        with printer.in_square_brackets():
            printer.print_list(
                zip(self.static_offsets.iter_values(), self.offset_terms(), strict=True),
                lambda entry: _print_affine(printer, *entry),
            )
        strides = tuple(self.strides.iter_values())
        if any(stride != 1 for stride in strides):
            printer.print_string(" strides ")
            with printer.in_square_brackets():
                printer.print_list(strides, printer.print_int)
        printer.print_op_attributes(self.attributes)
        printer.print_string(" : ")
        printer.print_attribute(self.source.type)
        printer.print_string(" -> ")
        printer.print_attribute(self.result.type)

    @classmethod
    def parse(cls, parser: Parser) -> ViewOp:
        source = parser.parse_unresolved_operand()
        entries = parser.parse_comma_separated_list(
            Parser.Delimiter.SQUARE, lambda: _parse_affine(parser)
        )
        strides = None
        if parser.parse_optional_keyword("strides"):
            strides = parser.parse_comma_separated_list(
                Parser.Delimiter.SQUARE, parser.parse_integer
            )
        attributes = parser.parse_optional_attr_dict()
        parser.parse_punctuation(":")
        source_type = parser.parse_type()
        parser.parse_punctuation("->")
        result_type = parser.parse_type()
        if not isinstance(result_type, ViewType):
            parser.raise_error(f"expected a !mem.view result type, got {result_type}")

        # Induction variables in order of first appearance, each with its coefficients.
        ivs: dict[tuple[str, int], UnresolvedOperand] = {}
        for _, terms in entries:
            for _, iv in terms:
                ivs.setdefault((iv.span.text, iv.index), iv)
        names = list(ivs)
        rank = len(entries)
        coefficients = [[0] * rank for _ in names]
        for d, (_, terms) in enumerate(entries):
            for coeff, iv in terms:
                coefficients[names.index((iv.span.text, iv.index))][d] += coeff
        op = cls.create(
            operands=[
                parser.resolve_operand(source, source_type),
                *(parser.resolve_operand(iv, IndexType()) for iv in ivs.values()),
            ],
            properties={
                "static_offsets": DenseArrayBase.from_list(i64, [c for c, _ in entries]),
                "coefficients": DenseArrayBase.from_list(
                    i64, [c for row in coefficients for c in row]
                ),
                "strides": DenseArrayBase.from_list(i64, strides or [1] * rank),
            },
            result_types=[result_type],
            attributes=attributes,
        )
        return op


def _print_affine(printer: Printer, constant: int, terms: Sequence[tuple[int, SSAValue]]) -> None:
    """Prints `a * %i - b * %j + c`, leaving out unit coefficients and a zero constant."""
    for k, (coeff, iv) in enumerate(terms):
        if k:
            printer.print_string(" - " if coeff < 0 else " + ")
        elif coeff < 0:
            printer.print_string("-")
        if abs(coeff) != 1:
            printer.print_int(abs(coeff))
            printer.print_string(" * ")
        printer.print_ssa_value(iv)
    if not terms:
        printer.print_int(constant)
    elif constant:
        printer.print_string(" - " if constant < 0 else " + ")
        printer.print_int(abs(constant))


def _parse_affine(parser: Parser) -> tuple[int, list[tuple[int, UnresolvedOperand]]]:
    """Parses a sum like `a * %i - %j * b + c` (any order) into a constant and terms."""
    constant = 0
    terms: list[tuple[int, UnresolvedOperand]] = []
    sign = -1 if parser.parse_optional_punctuation("-") else 1
    while True:
        if (iv := parser.parse_optional_unresolved_operand()) is not None:
            if parser.parse_optional_punctuation("*"):
                sign *= parser.parse_integer(allow_boolean=False)
            terms.append((sign, iv))
        else:
            value = sign * parser.parse_integer(allow_negative=False, allow_boolean=False)
            if parser.parse_optional_punctuation("*"):
                terms.append((value, parser.parse_unresolved_operand()))
            else:
                constant += value
        if parser.parse_optional_punctuation("+"):
            sign = 1
        elif parser.parse_optional_punctuation("-"):
            sign = -1
        else:
            return constant, terms


@irdl_op_definition
class ReinterpretOp(IRDLOperation):
    """The same bytes as another buffer type (a reshape that moves nothing): an alias."""

    name = "mem.reinterpret"

    source = operand_def(BufferType)
    result = result_def(BufferType)

    assembly_format = "$source attr-dict `:` type($source) `->` type($result)"

    def __init__(self, source: SSAValue | Operation, result_type: BufferType):
        super().__init__(operands=[source], result_types=[result_type])

    def verify_(self) -> None:
        source, result = self.source.type, self.result.type
        assert isinstance(source, BufferType) and isinstance(result, BufferType)
        if source.nbytes != result.nbytes or source.space != result.space:
            raise VerifyException("a reinterpretation keeps the bytes and the memory space")


def root_buffer(value: SSAValue) -> BufferOp:
    """The buffer that owns the storage of a buffer, view or reinterpretation."""
    owner = value.owner
    while isinstance(owner, (ViewOp, ReinterpretOp)):
        owner = owner.source.owner
    assert isinstance(owner, BufferOp), f"{value} does not come from a mem.buffer"
    return owner


Mem = Dialect(
    "mem",
    [PoolOp, BufferOp, ViewOp, ReinterpretOp],
    [MemorySpaceAttr, BufferType, ViewType],
)
