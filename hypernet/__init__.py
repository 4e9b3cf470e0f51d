"""Hypernetwork (zero-shot tokenizer transfer): predicts embeddings for any tokenizer.

Not built yet: it is tracked as its own issue and will use the vocabulary layer in
``transplant.vocab`` for decompositions, like every initialiser does.
"""
