"""Benchmarks: speed per step (:mod:`.speed`), accuracy against published numbers (:mod:`.accuracy`,
:mod:`.anchors`), and the same Burgers setup beside DeepXDE (:mod:`.deepxde`); behind ``pinnbal bench``."""
