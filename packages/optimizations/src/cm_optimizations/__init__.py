"""cm-optimizations: each GPU / throughput optimization is a plugin behind one contract."""
