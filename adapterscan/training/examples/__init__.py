"""Building adapter sets on the bundled reference: the demo's labelled examples, the benign
calibration set behind the shipped weight bank, and the detection benchmark's zoo."""
