"""Weight-delta statistics of every adapter module, calibration and base comparisons (AS5xx)."""
