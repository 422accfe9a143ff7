"""Formal verification of the tile's periphery with SymbiYosys (see docs/reliability.md).

Each module holds the harnesses of one group of properties; :mod:`.catalogue` lists every
check (property, kind, depth) and every mutation that must break one; ``python -m
aimc.formal`` runs them and writes ``build/formal/results.md``.
"""
