"""The base of every formal harness: named properties, free inputs, past values, mutations.

A harness is an ``Elaboratable`` that instantiates one block (or the tile), drives its
inputs with free values (``AnySeq``) under the assumptions it states, and asserts the
block's properties. Each property has a name, ``<harness>.<property>``; a harness can be
built with ``only`` a set of them (plus its helper invariants, which k-induction needs), so
that each property is proved, timed and reported on its own.

A mutation is a named change of the design or of an assumption that one of the harness's
properties must catch. Design mutations are subclasses of the RTL component that add
statements after the original ``elaborate`` (the last assignment to a signal wins in
Amaranth), or override one of its methods; no RTL source is edited.
"""

from __future__ import annotations

from amaranth import Elaboratable, Module, ResetSignal, Signal, Value
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Cover
from amaranth.lib import wiring

__all__ = ["Harness", "drive_inputs", "driven", "elaborate_submodule", "free", "frozen", "fsm",
           "holding"]


def free(m, shape, name=None):
    """A signal that takes any value in every cycle."""
    s = Signal(shape, name=name)
    m.d.comb += s.eq(AnySeq(s.shape()))
    return s


def drive_inputs(m, interface, prefix=""):
    """Drive every input of ``interface`` (a component, or one of its interfaces) with a
    free value."""
    for path, member, value in interface.signature.flatten(interface):
        if member.flow == wiring.In:
            bits = Value.cast(value)
            m.d.comb += bits.eq(free(m, len(bits), prefix + "_".join(map(str, path))))


def frozen(m, shape, name=None):
    """A signal that takes any value, the same in every cycle."""
    s = Signal(shape, name=name)
    m.d.comb += s.eq(AnyConst(s.shape()))
    return s


class Harness(Elaboratable):
    """Base class of the formal harnesses.

    Subclasses set :attr:`name`, describe their mutations in :attr:`mutations` and write
    :meth:`build`, which adds the block and its properties to ``m``.

    Parameters
    ----------
    only : set of str or None
        The properties to assert (full names); None: all of them. Helper invariants are
        asserted in every build but a mutant's: with ``only``, a mutant asserts only those.
    mutation : str or None
        A key of :attr:`mutations`.
    label : str or None
        The prefix of the property names in place of :attr:`name` (a job that runs the
        harness at another configuration).

    Raises
    ------
    ValueError
        An unknown mutation.
    """

    #: Prefix of the harness's property names.
    name = "harness"
    #: Mutation key -> what it changes.
    mutations: dict[str, str] = {}
    #: Whether a mutant's build asserts the helper invariants too. A mutation is checked by
    #: a bounded check from the reset state, which needs no invariant; a harness whose
    #: invariants name the block's insides sets this False, since a mutant breaks those
    #: first, which says nothing of the properties.
    helpers_in_mutants = True

    def __init__(self, *, only=None, mutation=None, label=None):
        if mutation is not None and mutation not in self.mutations:
            raise ValueError(f"{type(self).__name__} has no mutation {mutation!r}; it has "
                             f"{', '.join(sorted(self.mutations)) or 'none'}")
        self.label = label
        self.only = None if only is None else frozenset(only)
        self.mutation = mutation
        #: (full name, "assert" or "cover", helper) of every property, filled by elaborate.
        self.declared: list[tuple[str, str, bool]] = []

    def full(self, name: str) -> str:
        return f"{self.label or self.name}.{name}"

    def prop(self, m, name, test, *, helper=False):
        """Assert ``test`` (in the cycles the enclosing ``If`` selects) as property ``name``.
        A ``helper`` is an invariant the induction of the other properties needs."""
        full = self.full(name)
        self.declared.append((full, "assert", helper))
        if self.mutation is not None and self.only is not None:
            keep = full in self.only  # a mutant's check of the property that must catch it
        elif helper and self.mutation is not None and not self.helpers_in_mutants:
            keep = False
        else:
            keep = self.only is None or helper or full in self.only
        if keep:
            m.d.comb += Assert(test, f"prop:{full}")

    def cover(self, m, name, test):
        full = self.full(name)
        self.declared.append((full, "cover", False))
        if self.only is None or full in self.only:
            m.d.comb += Cover(test, f"prop:{full}")

    @staticmethod
    def assume(m, test):
        m.d.comb += Assume(test)

    @staticmethod
    def past(m, value, name=None, init=0):
        """``value`` one cycle ago (``init`` in the first cycle). Call it outside any
        ``If``: the register samples only in the cycles its block is active."""
        s = Signal.like(value, name=name, init=init) if name else Signal.like(value, init=init)
        m.d.sync += s.eq(value)
        return s

    @staticmethod
    def instance(m, dut, name="dut"):
        """Add ``dut`` to ``m`` elaborated here, and return its module, so that helper
        invariants can name its internal registers (:func:`driven`)."""
        inner = dut.elaborate(None)
        m.submodules[name] = inner
        return inner

    def build(self, m: Module) -> None:
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        self.declared = []
        # The checks start from the reset state (every register at its init value) and
        # the reset stays low: properties across a reset are not claimed here.
        m.d.comb += Assume(~ResetSignal())
        self.build(m)
        return m

    def properties(self) -> list[tuple[str, str, bool]]:
        """Every property of the harness (elaborates it once, without converting)."""
        self.elaborate(None)
        return list(self.declared)


def driven(m, name, shape=None, *, width=None):
    """The signal called ``name`` that the elaborated module ``m`` drives (for a mutation
    that overrides an internal register after the original ``elaborate``).

    This reads ``Module._driving``, Amaranth 0.5's record of the signals a module assigns:
    the one private name the mutations rely on, kept here.

    ``width`` picks among signals of the same name by their width.

    Raises
    ------
    LookupError
        No signal, or more than one, of that name (and width) is driven by ``m``.
    """
    found = [s for s in m._driving.keys()
             if s.name == name and (width is None or len(s) == width)]
    if len(found) != 1:
        raise LookupError(f"the module drives {len(found)} signals named {name!r}, not one")
    # A layout's signal is found as its bits; ``shape`` gives back the view of its fields.
    return found[0] if shape is None else shape(found[0])


def holding(component, name, doc):
    """A mutation: the subclass of the RTL class ``component`` whose register ``name``
    (:func:`driven`) keeps its value in every cycle."""

    def elaborate(self, platform):
        m = component.elaborate(self, platform)
        register = driven(m, name)
        m.d.sync += register.eq(register)
        return m

    return type(f"_{component.__name__}Holding_{name}", (component,),
                {"elaborate": elaborate, "__doc__": doc})


def fsm(m, name="fsm"):
    """The FSM called ``name`` of the elaborated module ``m``: its ``state`` register and its
    ``encoding`` (state name -> value), for invariants that name the FSM's states.

    This reads ``Module._generated``, where Amaranth 0.5 keeps a module's FSMs: the second
    private name the harnesses rely on, kept here.
    """
    return m._generated[name]


def elaborate_submodule(m, name):
    """Replace the submodule ``name`` of the elaborated module ``m`` (a component the block
    added with ``m.submodules.<name> = ...``) by its elaboration, and return that, so that
    invariants can name the registers of a block inside the block (:func:`driven`). The
    netlist is the same: the component would be elaborated from the same ports later.

    This reads ``Module._named_submodules``: the third private name the harnesses rely on,
    kept here.
    """
    component, src_loc = m._named_submodules[name]
    inner = component.elaborate(None)
    m._named_submodules[name] = (inner, src_loc)
    return inner
