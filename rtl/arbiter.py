"""Who owns the sequencer and the result pipeline: the host or one of the engines."""

from __future__ import annotations

from amaranth import Cat, Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import TileConfig
from ..enums import CorrectMode, InputKind
from .engine import EngineSignature, OpKind, op_layout, result_beat

__all__ = ["Arbiter"]


class Arbiter(wiring.Component):
    """Grants the sequencer and the result pipeline (combinational).

    The host's vectors go first while no engine runs (``CTRL.enable`` set, a vector
    waiting); while an engine runs only engine requests are served, the engines in the
    order given. An engine that ``owns`` the pipeline receives the corrector's output on
    its ``results`` and sends its ``emit`` beats to ``out`` (``m_axis``); otherwise the
    corrector's output goes to ``out``. The corrector's mode is the owner's, else the
    host's. A ``timeout`` abandons what waits for the analogue half: a host vector is
    dropped (taken from the input buffer), an engine is told to ``abort``.

    Attributes
    ----------
    host_valid : In(1)
        A complete host vector waits in the input buffer.
    host_kind : In(InputKind)
        What it asks for (a forward or backward MVM, or an update).
    host_take : Out(1)
        It is taken: its MVM starts, or it is dropped after a timeout.
    enable : In(1)
        ``CTRL.enable``.
    <engine name> : In(EngineSignature)
        One per engine, named as given.
    op : Out(stream.Signature(op_layout))
        The next operation, to the sequencer.
    timeout, ready, idle : In(1)
        From the sequencer and the analogue half; passed to the engines.
    wait : Out(1)
        An engine waits for the analogue half.
    results : In(stream.Signature(result_beat))
        The corrector's output.
    out : Out(stream.Signature(result_beat))
        To ``m_axis``.
    host_mode : In(CorrectMode)
    mode : Out(CorrectMode)
        The corrector's mode.
    busy, owned : Out(1)
        An engine runs; an engine owns the result pipeline.

    Parameters
    ----------
    cfg : TileConfig
    engines : tuple of str
        Names of the engines, highest priority first.
    """

    def __init__(self, cfg: TileConfig, engines: tuple[str, ...]):
        if not isinstance(cfg, TileConfig):
            raise TypeError(f"cfg must be a TileConfig, not {cfg!r}")
        reserved = {"host_valid", "host_kind", "host_take", "enable", "op", "timeout", "ready",
                    "idle", "wait", "results", "out", "host_mode", "mode", "busy", "owned"}
        for name in engines:
            if not isinstance(name, str) or not name.isidentifier() or name in reserved:
                raise ValueError(f"engine names must be identifiers other than "
                                 f"{', '.join(sorted(reserved))}, not {name!r}")
        if len(set(engines)) != len(engines):
            raise ValueError(f"engine names must be distinct, not {engines!r}")
        self.cfg, self.engines = cfg, tuple(engines)
        super().__init__({
            "host_valid": In(1),
            "host_kind": In(InputKind),
            "host_take": Out(1),
            "enable": In(1),
            **{name: In(EngineSignature(cfg)) for name in self.engines},
            "op": Out(stream.Signature(op_layout(cfg))),
            "timeout": In(1),
            "ready": In(1),
            "idle": In(1),
            "wait": Out(1),
            "results": In(stream.Signature(result_beat(cfg))),
            "out": Out(stream.Signature(result_beat(cfg))),
            "host_mode": In(CorrectMode),
            "mode": Out(CorrectMode),
            "busy": Out(1),
            "owned": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        engines = [getattr(self, name) for name in self.engines]
        m.d.comb += [
            self.busy.eq(Cat(*(e.busy for e in engines)).any()),
            self.wait.eq(Cat(*(e.wait for e in engines)).any()),
            self.owned.eq(Cat(*(e.owns for e in engines)).any()),
        ]
        host = Signal()
        m.d.comb += host.eq(self.enable & self.host_valid & ~self.busy)

        # The sequencer: the host first, then the engines in order.
        # The host's kinds are the first ones of OpKind, with InputKind's values.
        assert all(OpKind[k.name].value == k.value for k in InputKind)
        m.d.comb += [self.op.valid.eq(host),
                     Value.cast(self.op.payload.kind).eq(Value.cast(self.host_kind)),
                     self.host_take.eq(host & (self.op.ready | self.timeout))]
        granted = host
        for e in engines:
            mine = ~granted & e.request.valid
            with m.If(mine):
                m.d.comb += [self.op.valid.eq(1), self.op.payload.eq(e.request.payload),
                             e.request.ready.eq(self.op.ready)]
            m.d.comb += [e.abort.eq(self.timeout & (mine | e.wait)),
                         e.ready.eq(self.ready), e.idle.eq(self.idle)]
            granted = granted | e.request.valid

        # The result pipeline: the owner's, else the host's.
        res, out = self.results, self.out
        m.d.comb += [out.valid.eq(res.valid), out.payload.eq(res.payload),
                     res.ready.eq(out.ready), self.mode.eq(self.host_mode)]
        for e in reversed(engines):  # the first engine wins (engines never own together)
            m.d.comb += e.results.payload.eq(res.payload)
            with m.If(e.owns):
                m.d.comb += [
                    e.results.valid.eq(res.valid), res.ready.eq(e.results.ready),
                    out.valid.eq(e.emit.valid), out.payload.eq(e.emit.payload),
                    e.emit.ready.eq(out.ready), self.mode.eq(e.mode),
                ]
        return m

