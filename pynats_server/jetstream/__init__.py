"""JetStream: streams and consumers on one server (nats-server 2.14's API and behaviour).

engine.py (enabling, lifecycle), jsaccount.py (an account's JetStream), api.py (requests to
handlers, JSON answers), errors.py (nats-server's error table), handlers.py (endpoints),
store/ (memory and file storage), recovery.py (loading what is stored). Imports run from
engine.py down; a part names its owner through jsaccount.JetStreamPort or ports.py.
"""
