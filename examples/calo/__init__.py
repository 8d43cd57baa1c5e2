"""Shared pieces of the fast calorimeter simulation examples (calo_vae.py, calo_gan.py,
calo_diffusion.py): the toy shower data and its preprocessing (data.py), a fused MLP and the
sinusoidal time embedding (nets.py), the mini-batch loop (loop.py), and the evaluation report
and generation speed (report.py).
"""
