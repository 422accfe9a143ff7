"""The Arbiter alone in Amaranth's simulator (combinational: no clock).

Random inputs are compared with a Python statement of the rules its docstring gives (the
host first while no engine runs, the engines in the order given, results and ``emit`` by
ownership, the owner's mode, ``abort`` to the engine whose request or wait a timeout
abandons, the host vector taken on a start or a timeout, the host's ``InputKind`` as the
request's ``OpKind`` of the same name); directed cases name each rule.
"""

import random

import pytest
from amaranth.sim import Simulator

from aimc import TileConfig
from aimc.enums import CorrectMode, InputKind
from aimc.rtl.arbiter import Arbiter
from aimc.rtl.engine import EngineSignature, OpKind, op_layout, result_beat

#: A training tile: host vectors of every kind (forward, backward, update) reach the arbiter.
CFG = TileConfig(rows=4, cols=6, lanes=4, training=True)
#: An inference tile: forward host vectors only (its loader drops the other kinds).
INFERENCE = TileConfig(rows=4, cols=6, lanes=4)


def op_word(kind, inject=0, row=0, neg=0):
    """A request payload as bits, packed by the layout's own offsets."""
    layout = op_layout(CFG)
    fields = {"kind": OpKind(kind).value, "inject": inject, "row": row, "neg": neg}
    return sum(v << layout[name].offset for name, v in fields.items())


def host_word(host_kind):
    """The op payload of a host vector: the OpKind named as its InputKind, the other
    fields 0."""
    return op_word(OpKind[InputKind(host_kind).name])


ENGINE_INPUTS = ("request.valid", "request.payload", "busy", "owns", "wait", "mode",
                 "results.ready", "emit.valid", "emit.payload")
ENGINE_OUTPUTS = ("request.ready", "abort", "ready", "idle", "results.valid",
                  "results.payload", "emit.ready")
TOP_INPUTS = ("host_valid", "host_kind", "enable", "op.ready", "timeout", "ready", "idle",
              "results.valid", "results.payload", "out.ready", "host_mode")
TOP_OUTPUTS = ("host_take", "op.valid", "op.payload", "wait", "results.ready", "out.valid",
               "out.payload", "mode", "busy", "owned")


def port(obj, path):
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj.as_value() if hasattr(obj, "as_value") else obj


def reference(names, top, engines):
    """The outputs the rules give for inputs ``top`` (dict) and ``engines`` (name -> dict)."""
    out = {"busy": int(any(e["busy"] for e in engines.values())),
           "wait": int(any(e["wait"] for e in engines.values())),
           "owned": int(any(e["owns"] for e in engines.values()))}
    host = top["enable"] and top["host_valid"] and not out["busy"]
    granted = "host" if host else next((n for n in names if engines[n]["request.valid"]), None)
    out["op.valid"] = int(granted is not None)
    out["op.payload"] = host_word(top["host_kind"]) if granted in ("host", None) else \
        engines[granted]["request.payload"]
    out["host_take"] = int(host and (top["op.ready"] or top["timeout"]))
    owner = next((n for n in names if engines[n]["owns"]), None)
    per = {}
    for n in names:
        e = engines[n]
        per[n] = {
            "request.ready": int(granted == n and top["op.ready"]),
            "abort": int(top["timeout"] and (granted == n or e["wait"])),
            "ready": top["ready"], "idle": top["idle"],
            "results.valid": int(owner == n and top["results.valid"]),
            "results.payload": top["results.payload"],
            "emit.ready": int(owner == n and top["out.ready"]),
        }
    if owner is None:
        out.update({"out.valid": top["results.valid"], "out.payload": top["results.payload"],
                    "results.ready": top["out.ready"], "mode": top["host_mode"]})
    else:
        e = engines[owner]
        out.update({"out.valid": e["emit.valid"], "out.payload": e["emit.payload"],
                    "results.ready": e["results.ready"], "mode": e["mode"]})
    return out, per


def random_inputs(names, rng, owners_max=1):
    op_bits, beat_bits = op_layout(CFG).size, result_beat(CFG).size
    top = {"host_valid": rng.getrandbits(1), "host_kind": rng.randrange(3),
           "enable": rng.random() < 0.8,
           "op.ready": rng.getrandbits(1), "timeout": rng.random() < 0.3,
           "ready": rng.getrandbits(1), "idle": rng.getrandbits(1),
           "results.valid": rng.getrandbits(1), "results.payload": rng.getrandbits(beat_bits),
           "out.ready": rng.getrandbits(1), "host_mode": rng.randrange(3)}
    top = {k: int(v) for k, v in top.items()}
    owners = rng.sample(names, rng.randint(0, owners_max))
    engines = {}
    for n in names:
        busy = rng.random() < 0.4
        engines[n] = {
            "request.valid": int(busy and rng.random() < 0.6), "busy": int(busy),
            "request.payload": rng.getrandbits(op_bits), "owns": int(n in owners),
            "wait": int(busy and rng.random() < 0.2), "mode": rng.randrange(3),
            "results.ready": rng.getrandbits(1), "emit.valid": rng.getrandbits(1),
            "emit.payload": rng.getrandbits(beat_bits),
        }
    return top, engines


def run_cases(names, cases, cfg=CFG):
    """Apply each (top, engines) case; returns [(outputs, per-engine outputs)]."""
    dut = Arbiter(cfg, names)
    got = []

    async def bench(ctx):
        for top, engines in cases:
            for k, v in top.items():
                ctx.set(port(dut, k), v)
            for n, inputs in engines.items():
                for k, v in inputs.items():
                    ctx.set(port(getattr(dut, n), k), v)
            out = {k: ctx.get(port(dut, k)) for k in TOP_OUTPUTS}
            per = {n: {k: ctx.get(port(getattr(dut, n), k)) for k in ENGINE_OUTPUTS}
                   for n in names}
            got.append((out, per))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return got


def check(names, cases, got):
    for i, ((top, engines), (out, per)) in enumerate(zip(cases, got, strict=True)):
        want, want_per = reference(names, top, engines)
        if not want["op.valid"]:
            out = {**out, "op.payload": want["op.payload"]}  # don't care without valid
        assert out == want, f"case {i}: {top} {engines}"
        assert per == want_per, f"case {i}: {top} {engines}"


@pytest.mark.parametrize("names", [("cal", "prog"), ("a", "b", "c")])
def test_arbiter_follows_its_rules_on_random_inputs(names):
    rng = random.Random(len(names))
    cases = [random_inputs(list(names), rng) for _ in range(600)]
    got = run_cases(names, cases)
    check(names, cases, got)
    # the cases reached each rule
    refs = [reference(names, *c) for c in cases]
    assert any(r[0]["host_take"] and not c[0]["op.ready"] for r, c in zip(refs, cases, strict=True))
    assert any(c[0]["host_valid"] and c[0]["enable"] and r[0]["busy"] and r[0]["op.valid"]
               for r, c in zip(refs, cases, strict=True))
    assert {c[0]["host_kind"] for r, c in zip(refs, cases, strict=True)
            if r[0]["host_take"] and not c[0]["timeout"]} == {k.value for k in InputKind}
    for n in names:
        assert any(r[1][n]["request.ready"] for r in refs)
        assert any(r[1][n]["abort"] and c[1][n]["wait"] for r, c in zip(refs, cases, strict=True))
    assert sum(r[0]["owned"] for r in refs) > 100


def engine(**kw):
    base = {k: 0 for k in ENGINE_INPUTS}
    base.update(kw)
    return base


def top_in(**kw):
    base = {k: 0 for k in TOP_INPUTS}
    base.update({"enable": 1, "ready": 1, "idle": 1})
    base.update(kw)
    return base


def one(names, top, engines, cfg=CFG):
    return run_cases(names, [(top, engines)], cfg)[0]


NAMES = ("cal", "prog")


def test_arbiter_host_first_only_while_no_engine_is_busy():
    req = op_word(OpKind.DRIFT, inject=1, row=3, neg=1)  # payload bits above the kind
    # no engine busy: the host vector goes, an engine's request (never seen in the tile
    # without busy) waits
    out, per = one(NAMES, top_in(host_valid=1, **{"op.ready": 1}),
                   {"cal": engine(**{"request.valid": 1, "request.payload": req}),
                    "prog": engine()})
    assert (out["op.valid"], out["op.payload"], out["host_take"]) == (1, host_word(0), 1)
    assert per["cal"]["request.ready"] == 0
    # an engine busy (even one not requesting): the host waits
    out, per = one(NAMES, top_in(host_valid=1, **{"op.ready": 1}),
                   {"cal": engine(busy=1, **{"request.valid": 1, "request.payload": req}),
                    "prog": engine()})
    assert (out["op.valid"], out["op.payload"], out["host_take"]) == (1, req, 0)
    assert per["cal"]["request.ready"] == 1
    out, _ = one(NAMES, top_in(host_valid=1, **{"op.ready": 1}),
                 {"cal": engine(), "prog": engine(busy=1)})
    assert (out["op.valid"], out["host_take"]) == (0, 0)
    # CTRL.enable clear: the host vector waits too
    out, _ = one(NAMES, top_in(host_valid=1, enable=0, **{"op.ready": 1}),
                 {"cal": engine(), "prog": engine()})
    assert (out["op.valid"], out["host_take"]) == (0, 0)


@pytest.mark.parametrize("cfg, host_kind, op_kind", [
    (CFG, InputKind.FORWARD, OpKind.FORWARD), (CFG, InputKind.BACKWARD, OpKind.BACKWARD),
    (CFG, InputKind.UPDATE, OpKind.UPDATE), (INFERENCE, InputKind.FORWARD, OpKind.FORWARD)],
    ids=["forward", "backward", "update", "inference-forward"])
def test_arbiter_maps_the_host_kind_onto_the_op_kind(cfg, host_kind, op_kind):
    """The host's request is the operation its vector asks for (TUSER), the other fields 0;
    the mapping written out, not derived from the names as the reference does. Backward
    and update vectors exist on training tiles only."""
    req = op_word(OpKind.READ, row=2, neg=1)
    out, _ = one(NAMES, top_in(host_valid=1, host_kind=host_kind.value, **{"op.ready": 1}),
                 {"cal": engine(**{"request.valid": 1, "request.payload": req}),
                  "prog": engine()}, cfg)
    assert (out["op.valid"], out["host_take"]) == (1, 1)
    assert out["op.payload"] == op_kind.value  # kind in the low bits, inject/row/neg 0
    # an engine running: its request, whatever the host's vector asks for
    out, _ = one(NAMES, top_in(host_valid=1, host_kind=host_kind.value, **{"op.ready": 1}),
                 {"cal": engine(busy=1, **{"request.valid": 1, "request.payload": req}),
                  "prog": engine()}, cfg)
    assert (out["op.payload"], out["host_take"]) == (req, 0)


def test_arbiter_serves_engines_in_priority_order():
    ra, rb = op_word(OpKind.ZERO, inject=1), op_word(OpKind.READ, row=1, neg=1)
    both = {"cal": engine(busy=1, **{"request.valid": 1, "request.payload": ra}),
            "prog": engine(busy=1, **{"request.valid": 1, "request.payload": rb})}
    out, per = one(NAMES, top_in(**{"op.ready": 1}), both)
    assert out["op.payload"] == ra
    assert (per["cal"]["request.ready"], per["prog"]["request.ready"]) == (1, 0)
    out, per = one(("prog", "cal"), top_in(**{"op.ready": 1}), both)
    assert out["op.payload"] == rb
    assert (per["cal"]["request.ready"], per["prog"]["request.ready"]) == (0, 1)
    # not ready: nobody is told ready
    out, per = one(NAMES, top_in(), both)
    assert out["op.valid"] == 1 and per["cal"]["request.ready"] == 0


def test_arbiter_routes_results_and_emit_by_ownership_with_the_owner_mode():
    res, emit = 0x5A5A5A, 0x123456
    t = top_in(**{"results.valid": 1, "results.payload": res, "out.ready": 1},
               host_mode=CorrectMode.CORRECT.value)
    # nobody owns: the corrector's output leaves on out in the host's mode
    out, per = one(NAMES, t, {"cal": engine(**{"results.ready": 1}), "prog": engine()})
    assert (out["out.valid"], out["out.payload"], out["results.ready"], out["mode"]) == (
        1, res, 1, CorrectMode.CORRECT.value)
    assert per["cal"]["results.valid"] == 0 and per["cal"]["emit.ready"] == 0
    # prog owns: results to prog (not to cal), its emit to out, its mode to the corrector
    engines = {"cal": engine(**{"results.ready": 1}, mode=CorrectMode.RAW.value),
               "prog": engine(busy=1, owns=1, mode=CorrectMode.NO_DRIFT.value,
                              **{"results.ready": 0, "emit.valid": 1, "emit.payload": emit})}
    out, per = one(NAMES, t, engines)
    assert (out["out.valid"], out["out.payload"], out["results.ready"], out["mode"]) == (
        1, emit, 0, CorrectMode.NO_DRIFT.value)
    assert (per["prog"]["results.valid"], per["prog"]["results.payload"],
            per["prog"]["emit.ready"]) == (1, res, 1)
    assert (per["cal"]["results.valid"], per["cal"]["emit.ready"]) == (0, 0)
    assert out["owned"] == 1


def test_arbiter_timeout_aborts_the_waiting_owner_and_drops_the_host_vector():
    # an engine's request waiting: that engine aborts, the other does not
    engines = {"cal": engine(busy=1, **{"request.valid": 1}), "prog": engine(busy=1)}
    _, per = one(NAMES, top_in(timeout=1, ready=0), engines)
    assert (per["cal"]["abort"], per["prog"]["abort"]) == (1, 0)
    # a request not granted (a higher-priority one is) is not what waited
    engines = {"cal": engine(busy=1, **{"request.valid": 1}),
               "prog": engine(busy=1, **{"request.valid": 1})}
    _, per = one(NAMES, top_in(timeout=1, ready=0), engines)
    assert (per["cal"]["abort"], per["prog"]["abort"]) == (1, 0)
    # an engine waiting for a pulse step (wait) aborts
    engines = {"cal": engine(), "prog": engine(busy=1, wait=1)}
    out, per = one(NAMES, top_in(timeout=1, ready=0), engines)
    assert (per["cal"]["abort"], per["prog"]["abort"], out["wait"]) == (0, 1, 1)
    # no timeout: no abort
    _, per = one(NAMES, top_in(ready=0), engines)
    assert per["prog"]["abort"] == 0
    # the host vector waiting: taken (dropped) on the timeout, no engine aborts
    out, per = one(NAMES, top_in(host_valid=1, timeout=1, ready=0),
                   {"cal": engine(), "prog": engine()})
    assert (out["host_take"], per["cal"]["abort"], per["prog"]["abort"]) == (1, 0, 0)
    out, _ = one(NAMES, top_in(host_valid=1, ready=0), {"cal": engine(), "prog": engine()})
    assert out["host_take"] == 0


@pytest.mark.parametrize("engines, message", [
    (("cal", "op"), r"^engine names must be identifiers other than busy, enable, host_kind, "
                    r"host_mode, host_take, host_valid, idle, mode, op, out, owned, ready, "
                    r"results, timeout, wait, not 'op'$"),
    (("host_kind",), r"^engine names must be identifiers other than .*, not 'host_kind'$"),
    (("cal", "2x"), r"^engine names must be identifiers other than .*, not '2x'$"),
    (("cal", 3), r"^engine names must be identifiers other than .*, not 3$"),
    (("cal", "cal"), r"^engine names must be distinct, not \('cal', 'cal'\)$"),
])
def test_arbiter_rejects_bad_engine_names(engines, message):
    with pytest.raises(ValueError, match=message):
        Arbiter(CFG, engines)


def test_arbiter_and_engine_signature_reject_a_non_config():
    with pytest.raises(TypeError, match=r"^cfg must be a TileConfig, not 'x'$"):
        Arbiter("x", ("cal",))
    with pytest.raises(TypeError, match=r"^EngineSignature needs a TileConfig, not None$"):
        EngineSignature(None)
    assert EngineSignature(CFG) == EngineSignature(TileConfig(rows=4, cols=6, lanes=4,
                                                              training=True))
    assert EngineSignature(CFG) != EngineSignature(TileConfig(rows=4, cols=6, lanes=2,
                                                              training=True))
    assert repr(EngineSignature(CFG)) == f"EngineSignature({CFG.key})"
