"""Thin aiohttp handlers: parse the request, call a service, shape the answer."""
