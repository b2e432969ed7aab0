"""Diffusion maths shared by the priors (sampling) and the losses (inversion, guidance limits).

It imports nothing else of the project but `errors`, so `priors` and `distill` both depend on
it and never on each other's internals.
"""
