"""Benchmark harness comparing pynats-server with the Go nats-server.

Run ``python -m benchmarks --help`` from the repository root. See benchmarks/README.md.
"""
