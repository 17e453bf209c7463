"""Restoration training of RRSR / C2-Matching (spec §5.3-5.4), CLI ``rrsr-train``.

Modules: ``losses`` (L1, perceptual, WGAN-GP), ``discriminator`` (``ImageDiscriminator``), ``rtrr`` (the
reciprocal-reconstruction reference warp), ``data`` (training pairs), ``trainer`` (one optimisation step and
the resumable training state), ``run`` (the loop, checkpoint files and log), ``__main__`` (the CLI).
"""
