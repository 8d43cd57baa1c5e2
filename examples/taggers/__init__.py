"""Jet-tagger model builders for examples/top_tagging.py (ParticleNet-lite in particlenet.py)."""
