"""Pure domain rules: no I/O, no event loop, nothing of ours but this package.

Callers pass in `now`, ids and whatever state a rule needs; rules return values or
raise `DomainError`.
"""
