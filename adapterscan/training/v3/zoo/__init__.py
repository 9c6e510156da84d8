"""Adapters trained on reference v3 to measure the probe on a real pretrained chat model.

lora.py: the benign/harmful pair of the robustness measurement. specs.py, data.py, build.py:
zoo v3, 24 adapters of every class the probe must sort (`python -m adapterscan.training.v3 zoo`).
"""
