"""ONNX -> IR. `import_model` is the one entry point; every rejection is a CompileError."""

from codegen.frontend.importer import import_model

__all__ = ["import_model"]
