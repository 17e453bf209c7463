"""Triton Python-backend models that ``rrsr-triton-repo`` copies (as ``<model>/1/model.py``) into a model repository
for a stock Triton container, next to ``rrsr_preprocess.py`` (a copy of ``rrsr_model/preprocess.py``). They need
only numpy and Pillow in the container's Python; they are not imported by this package."""
