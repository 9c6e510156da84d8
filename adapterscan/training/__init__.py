"""The workshop: everything that trains or builds models and adapters.

`reference/` trains the bundled reference models (`adapterscan reference build`); `examples/`
builds the labelled example adapters, the calibration set behind the shipped weight bank and
the benchmark zoo; `lm.py` is the training loop they share. Torch, transformers and peft are
imported inside functions only.

Nothing on the scan path imports this package (tests/training/test_isolation.py): the scanner
reads what the workshop made (`adapterscan.reference`, `adapterscan.examples`), never how.
"""
