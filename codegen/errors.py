"""The one error type users see: a CompileError prints as a single line and exits with status 2."""


class CompileError(Exception):
    """A model, file or option the compiler cannot accept; the message names what and why."""


class Unsupported(Exception):
    """Raised by an operator module for a node it cannot handle; the frontend collects them all."""
