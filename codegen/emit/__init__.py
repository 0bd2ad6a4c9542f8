"""IR + memory plan -> the files of a generated model folder (in memory; compiler.py writes)."""

from codegen.emit.model import EmittedModel, emit_model

__all__ = ["EmittedModel", "emit_model"]
