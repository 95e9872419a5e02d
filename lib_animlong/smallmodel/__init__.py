"""The small AnimateDiff trained on this machine: moving sprites, a pixel-unshuffle "VAE", a tiny ldm UNet.

sprites.py   procedural videos (deterministic per seed, any length) and their prompts
latent.py    lossless space-to-depth 32x32x3 <-> 16x16x12
text.py      the word vocabulary and the learned per-word text embedding
config.py    the UNet / motion-module topology and the noise schedule
weights.py   save / load the shipped weights (models/)
train.py     the two training stages, resumable (`python -m lib_animlong.smallmodel.train --help`)
"""
