"""The suite's records: what a trial, a sweep and a run are, as plain typed data.

Leaf modules: they import neither JAX nor SQLAlchemy (a test checks it), so every layer — the
engine, the database, executors on other hosts, the CLI — can build and read them.
"""
