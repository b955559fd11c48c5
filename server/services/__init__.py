"""Use cases: read the store, apply a domain rule, write, publish.

The only place where domain rules meet I/O. Handlers call services; services never
see aiohttp.
"""
