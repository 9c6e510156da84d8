"""Coverage-guided fuzzing (atheris, libFuzzer) of every parser that reads untrusted bytes.

One harness per entry point (`h_*.py`), a driver that keeps the invariants (engine.py), seeds and
dictionaries built from the tests' fixture builders (seeds.py, tokens.py), and a runner
(runner.py). `python -m benchmarks.fuzz [--runs N] [NAME ...]` fuzzes and prints a table;
`python -m benchmarks.run_all bench_fuzz` also writes docs/benchmarks/bench_fuzz.md.
"""
