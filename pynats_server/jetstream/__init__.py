"""JetStream: streams and consumers on one server (nats-server 2.14's API and behaviour).

engine.py (enabling, accounts, lifecycle), api.py (requests to handlers, JSON answers),
errors.py (nats-server's error table), handlers.py (endpoints), store/ (memory and file
storage), recovery.py (loading what is stored).
"""
