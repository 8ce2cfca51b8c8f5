"""The sampler study: GMF trained with every gnno sampler and loss at the
recipe (``gnno.recipes``), to convergence, on ML-1M, ML-1M with planted
false negatives, Gowalla and synthetic data; the gain-sampler hypotheses;
and the recipe search. Run it as ``python benches/study`` (see
``__main__.py``)."""
