"""AXI4-Stream source and sink for the tile's data streams that wake Python per beat, not per
clock.

cocotbext-axi's ``AxiStreamSource`` and ``AxiStreamSink`` look at every rising edge while a
frame is queued or a beat is offered, and their pause generators run a coroutine on every
clock: at 137 cycles per MVM the Python wakes cost more than the simulation. These subclasses
keep cocotbext-axi's interface (``send``, ``recv``, the queues, reset handling, the sink's
manual ``pause``) and change only when they wake:

* a beat that waits for the other side sleeps until the handshake signal it needs rises
  (checked at the falling edge in between, when every registered output is stable), then
  takes the next rising edge;
* random stalls are drawn per beat: before each beat the number of stalled clocks is drawn
  from the geometric law of independent per-cycle stalls with the given probability (the
  law of cocotbext-axi's per-cycle pause generator), and slept through with one ``Timer``.

The source keeps TVALID high and TDATA stable from the moment it offers a beat until the
beat is taken; the sink's TREADY is low through each drawn stall and high otherwise. The
protocol rules themselves are proved on the RTL (``make formal``), and the cocotbext-axi
models stay for the AXI4-Lite bus and the target stream.
"""

from __future__ import annotations

import random

from cocotb.triggers import FallingEdge, RisingEdge, Timer
from cocotbext.axi import AxiStreamFrame, AxiStreamSink, AxiStreamSource

__all__ = ["StreamSink", "StreamSource", "stall_cycles"]


def stall_cycles(rng: random.Random | None, probability: float) -> int:
    """Stalled clocks before a beat: each cycle stalls with ``probability``, independently,
    until the first that does not (a geometric count, 0 when the probability is 0)."""
    n = 0
    if rng is not None and probability > 0:
        while rng.random() < probability:
            n += 1
    return n


def _high(signal) -> bool:
    """A one-bit signal reads 1 (an undefined value, as before the first clock, is not)."""
    return str(signal.value) == "1"


class _Stalls:
    """Per-beat random stalls. Every decision is taken at a falling edge of the clock, when
    the tile's registered outputs are stable; a beat is taken at a rising edge."""

    def __init__(self, bus, clock, reset=None, *, period_ns: float, **kwargs):
        self._period = period_ns
        self._stall_rng: random.Random | None = None
        self._stall_p = 0.0
        super().__init__(bus, clock, reset, **kwargs)

    def set_stalls(self, probability: float, rng: random.Random):
        """From now on, stall each cycle with ``probability`` (drawn per beat from ``rng``)."""
        if not 0 <= probability < 1:
            raise ValueError(f"stall probability must be in [0, 1), not {probability!r}")
        self._stall_p, self._stall_rng = probability, rng

    def set_pause_generator(self, generator=None):
        raise TypeError(f"{type(self).__name__} draws its stalls per beat: use "
                        f"set_stalls(probability, rng), not a per-cycle pause generator")

    async def _stall(self) -> None:
        """At a falling edge: sleep through the drawn stalled clocks, to the falling edge
        before the first rising edge that is not stalled."""
        n = stall_cycles(self._stall_rng, self._stall_p)
        if n:
            await Timer(n * self._period, "ns")


class StreamSource(_Stalls, AxiStreamSource):
    """An AXI4-Stream source that wakes per beat (see the module)."""

    async def _run(self):
        bus = self.bus
        has_tuser, has_tkeep = hasattr(bus, "tuser"), hasattr(bus, "tkeep")
        frame, offset = None, 0
        self.active = False
        while True:
            await FallingEdge(self.clock)
            if not frame and self.queue.empty():
                bus.tvalid.value = 0
                bus.tlast.value = 0
                self.active = False
                self.idle_event.set()
                self.active_event.clear()
                await self.active_event.wait()
                continue
            if not frame:
                frame = self.queue.get_nowait()
                self.dequeue_event.set()
                self.queue_occupancy_bytes -= len(frame)
                self.queue_occupancy_frames -= 1
                self.current_frame = frame
                frame.normalize()
                self.log.info("TX frame: %s", frame)
                self.active = True
                offset = 0
            if self._stall_p:
                bus.tvalid.value = 0
                await self._stall()
            tdata = tkeep = tuser = last = 0
            for lane in range(self.byte_lanes):
                tdata |= (frame.tdata[offset] & self.byte_mask) << (lane * self.byte_size)
                tkeep |= (frame.tkeep[offset] & 1) << lane
                tuser = frame.tuser[offset]
                offset += 1
                if offset >= len(frame.tdata):
                    last = 1
                    frame.handle_tx_complete()
                    frame = self.current_frame = None
                    break
            bus.tdata.value = tdata
            if has_tkeep:
                bus.tkeep.value = tkeep
            if has_tuser:
                bus.tuser.value = tuser
            bus.tlast.value = last
            bus.tvalid.value = 1
            # The beat stays offered until a rising edge finds TREADY high.
            while True:
                await RisingEdge(self.clock)
                if _high(bus.tready):
                    break
                await FallingEdge(self.clock)
                if not _high(bus.tready):
                    await RisingEdge(bus.tready)


class StreamSink(_Stalls, AxiStreamSink):
    """An AXI4-Stream sink that wakes per beat (see the module). ``pause = True`` holds
    TREADY low until it is set back to False."""

    async def _run(self):
        bus = self.bus
        has_tuser, has_tkeep = hasattr(bus, "tuser"), hasattr(bus, "tkeep")
        frame = None
        self.active = False
        wake = self.wake_event.wait()
        bus.tready.value = 0
        while True:
            await FallingEdge(self.clock)
            if self.pause or self.full():
                bus.tready.value = 0
                self.wake_event.clear()
                await wake
                continue
            if not _high(bus.tvalid):
                bus.tready.value = 0
                await RisingEdge(bus.tvalid)
                continue
            # A beat is offered: TREADY low through the drawn stalls, then high.
            if self._stall_p:
                bus.tready.value = 0
                await self._stall()
            bus.tready.value = 1
            await RisingEdge(self.clock)  # the beat is taken here (TVALID stays high)
            if frame is None:
                frame = AxiStreamFrame([], [], [], [], [])
                self.active = True
            data = int(bus.tdata.value)
            keep = int(bus.tkeep.value) if has_tkeep else -1
            user = int(bus.tuser.value) if has_tuser else 0
            for lane in range(self.byte_lanes):
                frame.tdata.append((data >> (lane * self.byte_size)) & self.byte_mask)
                frame.tkeep.append((keep >> lane) & 1)
                frame.tid.append(0)
                frame.tdest.append(0)
                frame.tuser.append(user)
            if _high(bus.tlast):
                self.log.info("RX frame: %s", frame)
                self.queue_occupancy_bytes += len(frame)
                self.queue_occupancy_frames += 1
                self.queue.put_nowait(frame)
                self.active_event.set()
                frame = None
                self.active = False
