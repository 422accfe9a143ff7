"""Every formal check of the periphery: which harness, which mode and depth, which
mutations must break which property. ``python -m aimc.formal`` runs them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import TileConfig
from .axil import AxiLiteHarness
from .calib import CalibrationHarness
from .datapath import CorrectorHarness, DividerHarness, SarHarness, SqrtHarness
from .harness import Harness
from .program import ProgramHarness, ProgramStreamHarness
from .streams import LoaderHarness, PackerHarness
from .tile import TileHarness
from .timeout import TimeoutHarness
from .update import UpdateHarness

__all__ = ["JOBS", "Job", "Mutation"]


@dataclass(frozen=True)
class Mutation:
    """A change the job's properties must catch: ``key`` of the harness's mutations, the
    property (short name) expected to fail with a counterexample, and the depth of the
    bounded check that looks for it."""

    key: str
    catches: str
    depth: int


@dataclass(frozen=True)
class Job:
    """One harness at one configuration.

    ``mode`` is ``prove`` (k-induction, ``k = depth``) or ``bmc`` (bounded to ``depth``
    steps); ``cover_depth`` bounds the search for its cover traces. ``quick`` jobs run in
    ``make test`` (tests/test_formal.py), all of them in ``make formal``, which proves each
    property on its own unless the job is ``together`` (one run for all its properties, for
    a job whose every run costs about the same whatever it asserts). A job without
    ``covers`` leaves them to the job of the same harness at a narrower range (their
    exact-bound traces grow with the range). ``solver`` is the SMT solver of its runs
    (:data:`~aimc.formal._sby.SOLVERS`; None: the default, Boolector).
    """

    key: str
    group: str
    block: str
    make: Callable[..., Harness]
    mode: str
    depth: int
    cover_depth: int
    quick: bool = True
    mutations: tuple[Mutation, ...] = ()
    together: bool = False
    covers: bool = True
    solver: str | None = None

    def harness(self, **kwargs) -> Harness:
        return self.make(**kwargs)


def _divider(widths):
    return lambda **kw: DividerHarness(*widths, **kw)


def _sqrt(n):
    return lambda **kw: SqrtHarness(n, **kw)


_TRAINING_TILE = TileConfig(rows=2, cols=2, input_bits=2, adc_bits=2, lanes=2, training=True)
_TWO_BEATS = TileConfig(rows=2, cols=2, input_bits=2, adc_bits=2, lanes=1)
_TWO_BEAT_TRAINING = TileConfig(rows=2, cols=2, input_bits=2, adc_bits=2, lanes=1,
                                training=True)
_WIDE_CORRECTOR = TileConfig(rows=5, cols=6, input_bits=12, adc_bits=12, lanes=4,
                             input_mode="bitserial", training=True)

#: Steps of the tile's bounded checks (2x2 tile: an MVM period is 5 cycles, a vector's
#: port-to-port latency 11), and of their cover searches. The liveness assumptions leave
#: the solver far less to search, so that check goes deeper.
TILE_DEPTH = 20
TILE_LIVE_DEPTH = 30
#: The training tile's conservation, to the same depth: 658 s (16 steps: 38 s), both with a
#: CI run beside them.
TILE_TRAINING_DEPTH = 20
TILE_COVER_DEPTH = 20
#: The order check's analogue half answers from the rows driven, which leaves the solver
#: little to search: 28 steps (four to five MVMs) take about 6 s; past 30 each step takes
#: 1.5 to 2 times the one before (40 steps: 360 s).
TILE_ORDER_DEPTH = 28
#: With ready free (timeouts) the search grows faster: 24 steps take about
#: 11 s, 28 about 66 s (the training tile's, in make formal: 148 s).
TILE_ORDER_TIMEOUT_DEPTH = 24

#: The calibration engine's cover search must pass the shortest run with the drift scale's
#: division (28 cycles at p = 1, one MVM); its mutants' bounded checks the shortest run
#: that outlasts its bound (two MVMs for rep_stuck: 15 cycles; one phase for phase_stuck).
CAL_COVER_DEPTH = 30
CAL_MUTANT_DEPTH = 20

JOBS: tuple[Job, ...] = (
    Job("axil", "1 AXI4-Lite", "RegisterFile (rtl/csr.py), register map of a 2x2 tile",
        AxiLiteHarness, "prove", 3, 6, mutations=(
            Mutation("leaky", "rw_fields_follow_the_map", 4),
            Mutation("clear_wins", "w1c_set_wins_over_clear", 4),
            Mutation("drop_bvalid", "one_b_per_write", 4),
            Mutation("read_overrun", "one_r_per_read", 6))),
    Job("loader", "2 AXI4-Stream", "InputLoader (rtl/stream.py, s_axis), 3x2 tile, 2 lanes",
        LoaderHarness, "prove", 4, 8, mutations=(
            Mutation("ready_on_valid", "tready_never_waits_for_tvalid", 6),
            Mutation("overwrite", "tready_never_waits_for_tvalid", 6))),
    Job("packer", "2 AXI4-Stream", "ResultPacker (rtl/stream.py, to m_axis), 3x3 tile, 2 lanes",
        PackerHarness, "prove", 4, 8, mutations=(
            Mutation("valid_on_ready", "tvalid_never_waits_for_tready", 6),
            Mutation("early_last", "beats_are_the_vector_in_order", 6))),
    # The same ends on inference tiles (forward vectors only).
    Job("loader_inf", "2 AXI4-Stream", "InputLoader (rtl/stream.py, s_axis), 3x2 inference "
        "tile, 2 lanes", lambda **kw: LoaderHarness(TileConfig(rows=3, cols=2, lanes=2), **kw),
        "prove", 4, 8, mutations=(Mutation("ready_on_valid", "tready_never_waits_for_tvalid", 6),)),
    Job("packer_inf", "2 AXI4-Stream", "ResultPacker (rtl/stream.py, to m_axis), 3x3 inference "
        "tile, 2 lanes", lambda **kw: PackerHarness(TileConfig(rows=3, cols=3, lanes=2), **kw),
        "prove", 4, 8, mutations=(Mutation("early_last", "beats_are_the_vector_in_order", 6),)),
    Job("prog_tgt", "2 AXI4-Stream", "ProgramEngine (rtl/program.py, t_axis), 2x3 tile, 2-bit "
        "inputs and ADCs, 2 lanes (two beats per target packet)", ProgramStreamHarness,
        "prove", 2, 8, mutations=(
            Mutation("short_packet_taken", "misframed_packet_ends_the_run_with_error", 8),
            Mutation("ready_while_grouping", "tready_only_when_a_packet_is_due", 8),
            Mutation("request_while_loading", "reads_and_pulses_follow_the_row_packet", 8),
            Mutation("silent_inhibit", "clean_run_took_one_packet_per_row", 8))),
    Job("sar2x4", "5 datapath", "SarController (rtl/sar.py), 2 ADCs x 4 bits",
        lambda **kw: SarHarness(2, 4, **kw), "prove", 7, 12, mutations=(
            Mutation("skip_step", "trial_is_search_step", 12),
            Mutation("stale_code", "trial_is_search_step", 12))),
    Job("sar1x8", "5 datapath", "SarController (rtl/sar.py), 1 ADC x 8 bits (the tile's)",
        lambda **kw: SarHarness(1, 8, **kw), "prove", 11, 20, quick=False),
    Job("div8_4_4", "5 datapath", "SequentialDivider (rtl/divider.py), 8 / 4 -> 4 bits",
        _divider((8, 4, 4)), "prove", 8, 10, mutations=(
            Mutation("skip_overflow", "overflow_iff_too_wide", 10),
            Mutation("no_restore", "quotient_and_remainder", 10))),
    Job("div6_6_6", "5 datapath", "SequentialDivider, 6 / 6 -> 6 bits (dividend not wider)",
        _divider((6, 6, 6)), "prove", 10, 12, quick=False),
    Job("div9_3_5", "5 datapath", "SequentialDivider, 9 / 3 -> 5 bits (dividend > qw + dw)",
        _divider((9, 3, 5)), "prove", 9, 12, quick=False),
    Job("sqrt4", "5 datapath", "SequentialSqrt (rtl/sqrt.py), 8-bit radicand",
        _sqrt(4), "prove", 7, 10, mutations=(Mutation("drop_bit", "root_is_floor_sqrt", 10),)),
    Job("sqrt6", "5 datapath", "SequentialSqrt, 12-bit radicand", _sqrt(6), "prove", 9, 12,
        quick=False),
    # The corrector at the tile's coefficient widths, its multiplications uninterpreted
    # (formal/datapath.py, Products): forward and backward results, then forward only.
    Job("corr", "5 datapath", "Corrector (rtl/correct.py), 3x3 training tile, 8-bit ADCs, 2 "
        "lanes, Q2.14 gain and drift scale; products uninterpreted", CorrectorHarness, "prove",
        2, 8, mutations=(
            Mutation("no_drift", "output_equals_spec", 8),
            Mutation("mode_skew", "output_equals_spec", 8),
            Mutation("round_down", "output_equals_spec", 8),
            Mutation("crossed_lanes", "output_equals_spec", 8),
            Mutation("unlinked_products", "output_equals_spec", 8))),
    Job("corr_inf", "5 datapath", "Corrector (rtl/correct.py), 3x5 inference tile, 8-bit ADCs, "
        "2 lanes (a padded last beat), Q2.14 gain and drift scale; products uninterpreted",
        lambda **kw: CorrectorHarness(TileConfig(rows=3, cols=5, lanes=2), **kw), "prove", 2, 8,
        mutations=(Mutation("round_down", "output_equals_spec", 8),)),
    # The widest raw results (12-bit bit-serial inputs and 12-bit ADCs: 23 bits), 4 lanes:
    # about 150 s a run, so its properties are proved in one run.
    Job("corr_wide", "5 datapath", "Corrector (rtl/correct.py), 5x6 training tile, 12-bit "
        "bit-serial inputs and 12-bit ADCs (23-bit raw results), 4 lanes, Q2.14 gain and drift "
        "scale; products uninterpreted",
        lambda **kw: CorrectorHarness(_WIDE_CORRECTOR, label="corr_wide", **kw), "prove", 2, 8,
        quick=False, together=True,
        mutations=(Mutation("round_down", "output_equals_spec", 8),)),
    # The same with the multipliers themselves, bounded: k-induction did not close within
    # 10 minutes, nor a bounded check step 6, so this checks the beats that leave by step 5
    # (the first leaves at step 4), every operand and coefficient free.
    Job("corr_exact", "5 datapath", "Corrector (rtl/correct.py), 3x3 training tile, 8-bit "
        "ADCs, 2 lanes, Q2.14 gain and drift scale; the multipliers themselves",
        lambda **kw: CorrectorHarness(exact_products=True, **kw), "bmc", 6, 6, together=True,
        covers=False, mutations=(Mutation("unsigned_product", "output_equals_spec", 6),)),
    Job("timeout", "4 liveness", "Sequencer (rtl/sequencer.py), readiness timeout, 2x2 "
        "tile, 2-bit inputs and ADCs", TimeoutHarness, "prove", 2, 8, mutations=(
            Mutation("equal_limit", "no_wait_outlasts_the_limit", 10),)),
    # The covers and the mutants' bounded checks must pass a whole run (28 to 37 cycles): with
    # Boolector 10 s and 16 to 19 s (z3: 339 s and 106 to 173 s), so the engines are quick.
    Job("prog", "4 liveness", "ProgramEngine (rtl/program.py), 1x2 tile, 2-bit inputs and "
        "ADCs, 2 lanes; every handshake within 1-3 cycles", ProgramHarness, "prove", 2, 40,
        mutations=(
            Mutation("it_stuck", "ends_within_the_bound", 40),
            Mutation("col_stuck", "ends_within_the_bound", 40))),
    Job("cal", "4 liveness", "CalibrationEngine (rtl/calib.py), 1x2 tile, 2-bit inputs and "
        "ADCs, 2 lanes, avg_log2 0..2; every handshake within 1-3 cycles", CalibrationHarness,
        "prove", 2, CAL_COVER_DEPTH, mutations=(
            Mutation("rep_stuck", "ends_within_the_bound", CAL_MUTANT_DEPTH),
            Mutation("phase_stuck", "ends_within_the_bound", CAL_MUTANT_DEPTH))),
    # The same bounds over wider register ranges, each job's assertions in one run; their
    # covers and mutants are those of prog and cal.
    Job("prog_7x7", "4 liveness", "ProgramEngine (rtl/program.py), 1x2 tile, 2-bit inputs and "
        "ADCs, 2 lanes; max_iter 0..7, width 1..7; every handshake within 1-3 cycles",
        lambda **kw: ProgramHarness(iter_max=7, width_max=7, label="prog_7x7", **kw), "prove",
        2, 40, quick=False, together=True, covers=False),
    Job("cal_avg3", "4 liveness", "CalibrationEngine (rtl/calib.py), 1x2 tile, 2-bit inputs and "
        "ADCs, 2 lanes, avg_log2 0..3; every handshake within 1-3 cycles",
        lambda **kw: CalibrationHarness(avg_max=3, label="cal_avg3", **kw), "prove", 2,
        CAL_COVER_DEPTH, quick=False, together=True, covers=False),
    Job("tile", "3 conservation", "Tile (rtl/tile.py), 2x2, 2-bit inputs and ADCs, 2 lanes; "
        "host writes CTRL and READY_TIMEOUT", TileHarness, "bmc", TILE_DEPTH, TILE_COVER_DEPTH,
        quick=False, mutations=(
            Mutation("no_drop_count", "results_are_frames_less_losses_and_in_flight", 12),)),
    # The same on a training tile: backward vectors yield one result each, updates none
    # (make formal only).
    Job("tile_trn", "3 conservation", "Tile (rtl/tile.py), 2x2 training tile, 2-bit inputs "
        "and ADCs, 2 lanes; host writes CTRL and READY_TIMEOUT; forward, backward and "
        "update vectors",
        lambda **kw: TileHarness(_TRAINING_TILE, label="tile_trn", **kw), "bmc",
        TILE_TRAINING_DEPTH, TILE_COVER_DEPTH, quick=False, mutations=(
            Mutation("no_drop_count", "results_are_frames_less_losses_and_in_flight", 12),)),
    Job("tile_live", "4 liveness", "Tile (rtl/tile.py), 2x2, 2-bit inputs and ADCs, 2 lanes; "
        "ready high, m_axis TREADY high, enabled", lambda **kw: TileHarness(live=True, **kw),
        "bmc", TILE_LIVE_DEPTH, TILE_COVER_DEPTH, quick=False, mutations=(
            Mutation("ready_may_fall", "a_result_leaves_within_the_latency_bound", 20),)),
    Job("tile_order", "3 conservation", "Tile (rtl/tile.py), 2x2, 2-bit inputs and ADCs, 2 "
        "lanes; the analogue half answering from the rows driven, ready high, frames free, "
        "host writes CTRL (raw results)",
        lambda **kw: TileHarness(order=True, **kw), "bmc", TILE_ORDER_DEPTH, TILE_COVER_DEPTH,
        mutations=(Mutation("late_load", "results_carry_their_vectors_in_order", 20),
                   Mutation("queue_every_frame", "results_carry_their_vectors_in_order", 20))),
    # The same with ready free and the host setting READY_TIMEOUT, so that vectors time out.
    Job("tile_order_to", "3 conservation", "Tile (rtl/tile.py), as tile_order with ready "
        "free and the host writing READY_TIMEOUT too (vectors abandoned by timeouts)",
        lambda **kw: TileHarness(order=True, timeouts=True, label="tile_order_to", **kw),
        "bmc", TILE_ORDER_TIMEOUT_DEPTH, TILE_COVER_DEPTH, mutations=(
            Mutation("stale_after_timeout", "results_carry_their_vectors_in_order", 20),)),
    # The same with two beats per vector and per result (one lane).
    Job("tile_order_2b", "3 conservation", "Tile (rtl/tile.py), 2x2, 2-bit inputs and ADCs, "
        "1 lane (two beats per vector and per result); as tile_order",
        lambda **kw: TileHarness(_TWO_BEATS, order=True, label="tile_order_2b", **kw),
        "bmc", TILE_ORDER_DEPTH, TILE_COVER_DEPTH, mutations=(
            Mutation("late_load", "results_carry_their_vectors_in_order", 20),
            Mutation("queue_every_frame", "results_carry_their_vectors_in_order", 20),
            Mutation("beats_swapped", "results_carry_their_vectors_in_order", 20))),
    # The same on a training tile: forward and backward results, updates in between.
    Job("tile_order_trn", "3 conservation", "Tile (rtl/tile.py), 2x2 training tile, 2-bit "
        "inputs and ADCs, 2 lanes; as tile_order_to, the row converters answering from the "
        "columns driven, forward, backward and update vectors",
        lambda **kw: TileHarness(_TRAINING_TILE, order=True, timeouts=True,
                                 label="tile_order_trn", **kw),
        "bmc", TILE_ORDER_DEPTH, TILE_COVER_DEPTH, quick=False, mutations=(
            Mutation("late_col_load", "results_carry_their_vectors_in_order", 20),)),
    # The training tile with two beats per vector and per result.
    Job("tile_order_trn2b", "3 conservation", "Tile (rtl/tile.py), 2x2 training tile, 2-bit "
        "inputs and ADCs, 1 lane (two beats per vector and per result); as tile_order_2b, "
        "forward, backward and update vectors",
        lambda **kw: TileHarness(_TWO_BEAT_TRAINING, order=True, label="tile_order_trn2b",
                                 **kw),
        "bmc", TILE_ORDER_DEPTH, TILE_COVER_DEPTH, mutations=(
            Mutation("beats_swapped", "results_carry_their_vectors_in_order", 20),
            Mutation("col_beats_swapped", "results_carry_their_vectors_in_order", 20))),
    # The same to 40 steps, where the tile can hold its most vectors (make formal only).
    Job("tile_order40", "3 conservation", "Tile (rtl/tile.py), as tile_order, bounded to 40",
        lambda **kw: TileHarness(order=True, label="tile_order40", **kw), "bmc", 40,
        TILE_COVER_DEPTH, quick=False, together=True, covers=False),
    # The mutations' bounded checks pass the 28 cycles before the first slot: 4 to 5 s with
    # Boolector (z3: 75 to 107 s).
    Job("upd", "6 training", "UpdateEngine (rtl/update.py), 1x1 tile, 2-bit inputs, "
        "stochastic, unmanaged, BL 1-4, its dividers and square root as latency stand-ins",
        UpdateHarness, "prove", 4, 34, mutations=(
            Mutation("stuck_generators", "generators_follow_xorshift32", 4),
            Mutation("extra_slot", "length_is_bl_plus_constant", 31),
            Mutation("unmasked", "line_fires_iff_draw_below_threshold", 31))),
)
