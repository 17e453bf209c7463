"""rrsr-export: RRSR checkpoint -> ONNX with MDCN / RAS as ``rrsr`` custom ops (or standard ops)."""
