"""Conformance suite for pynats-server: the same cases run against nats-server and pynats-server.

Run ``python -m conformance`` from the repository root; see conformance/README.md.
"""
