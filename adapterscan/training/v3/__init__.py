"""Reference v3: SmolLM2-135M-Instruct made safe by a LoRA this project trains and ships.

`python -m adapterscan.training.v3 build` trains the safety adapter (deterministic, CPU) into
`adapterscan/reference/v3/`; `python -m adapterscan.training.v3 eval` measures it on topics and
frames that training never saw, with a judge the probe does not use (evaluate.py). The scanner
only reads the shipped adapter (fetch/derived_base.py merges it into the pinned base).
"""
