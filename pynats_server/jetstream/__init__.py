"""JetStream: streams, consumers, KV and object store (nats-server 2.14 semantics).

Only the storage layer (`store`) exists so far; it is sans-IO with respect to the event loop:
no asyncio, no timers, no threads.
"""
