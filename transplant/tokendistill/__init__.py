"""Token Distillation (Dobler et al., 2025): new tokens' input rows learned from hidden states.

``snippets`` finds contexts of each new token in target text, ``hidden`` runs the model to one
layer, ``trainer`` is the loop. The method itself is ``transplant/init/tokendistill.py``.
"""
