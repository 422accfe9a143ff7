"""cocotb cosimulation: runner helper, analogue bridge and test benches."""
