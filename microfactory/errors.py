"""The three ways an operation can stop short (STYLE.md, section 9)."""


class DomainError(Exception):
    """A request the rules refuse (e.g. ordering a retired part). Maps to a 4xx."""


class Rejected(Exception):
    """The part cannot be made as asked: the job ends REJECTED with this reason."""


class TransientError(Exception):
    """Storage, broker or network trouble: the step is retried with backoff."""
