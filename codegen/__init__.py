"""onnx2mcu: compile ONNX models to plain C99 for microcontrollers."""

__version__ = "0.1.0"
