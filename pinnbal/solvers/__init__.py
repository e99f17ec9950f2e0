"""Reference solvers (scipy/numpy) for the shipped benchmark problems."""
