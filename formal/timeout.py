"""The readiness timeout of the sequencer (rtl/sequencer.py), on its own and unbounded: an
operation that waits for the analogue half's ``ready`` is abandoned exactly when its wait
reaches ``timeout_limit``, whatever the limit does while it waits."""

from __future__ import annotations

from amaranth import Mux, Signal

from ..config import TileConfig
from ..rtl.regmap import READY_TIMEOUT_DEFAULT
from ..rtl.sequencer import Sequencer
from .harness import Harness, drive_inputs, driven

__all__ = ["TimeoutHarness"]


def _waiting(seq):
    """An operation waits: the sequencer could take the offered one (idle, or handing over
    its results) or an engine waits, and ``ready`` is low (on the sequencer's ports)."""
    return ~seq.ready & ((seq.op.valid & (seq.idle | (seq.results.valid & seq.results.ready)))
                         | seq.wait_in)


class _EqualLimitSequencer(Sequencer):
    """Compares the wait with the limit for equality: a limit lowered below the cycles
    already waited is passed, and the wait goes on until the count wraps."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        waited, at_limit = driven(m, "waited"), driven(m, "at_limit")
        waiting = _waiting(self)
        with m.If(waiting & ~self.timeout):
            m.d.sync += at_limit.eq(waited + 2 == self.timeout_limit)
        with m.Else():
            m.d.sync += at_limit.eq(self.timeout_limit == 1)
        return m


class TimeoutHarness(Harness):
    """The sequencer of a small tile with every input free in every cycle (the offered
    operation, ``ready``, an engine's ``wait_in``, ``timeout_limit``, the converters'
    answers, the result stream's TREADY). An operation waits in a cycle in which the
    sequencer could take the offered one (idle, or handing over its results) or an engine
    waits, and ``ready`` is low; the harness counts the cycles of each wait itself. The
    limit in force in a cycle is ``timeout_limit`` of the cycle before (the registered
    comparison), ``READY_TIMEOUT``'s reset value in the first."""

    name = "timeout"
    mutations = {"equal_limit": "the wait is compared with the limit for equality"}

    def __init__(self, cfg=None, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg if cfg is not None else TileConfig(
            rows=2, cols=2, input_bits=2, adc_bits=2, lanes=2)

    def build(self, m):
        cls = _EqualLimitSequencer if self.mutation == "equal_limit" else Sequencer
        seq = cls(self.cfg)
        inner = self.instance(m, seq)
        drive_inputs(m, seq)
        waiting = _waiting(seq)
        waited = Signal(17)  # cycles of this wait before this one
        m.d.sync += waited.eq(Mux(waiting & ~seq.timeout, waited + 1, 0))
        now = Signal(17)  # cycles of this wait, this one included
        m.d.comb += now.eq(Mux(waiting, waited + 1, 0))
        limit = self.past(m, seq.timeout_limit, init=READY_TIMEOUT_DEFAULT)
        self.prop(m, "timeout_only_at_the_limit", ~seq.timeout | (waiting & (now >= limit)))
        self.prop(m, "no_wait_outlasts_the_limit", ~waiting | (now < limit) | seq.timeout)
        # Helper invariants (k-induction): the sequencer's count is the harness's, and its
        # registered comparison is the count's against the limit in force.
        ours, flag = driven(inner, "waited"), driven(inner, "at_limit")
        self.prop(m, "count_matches", ours == waited, helper=True)
        self.prop(m, "flag_matches", flag == (waited + 1 >= limit), helper=True)
        self.cover(m, "timeout_after_two", seq.timeout & (now == 2))
        self.cover(m, "timeout_on_a_lowered_limit", seq.timeout & (now > limit))
