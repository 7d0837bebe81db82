"""Importers of models made elsewhere (``edge-app import``), one module per source format, and the graph
clean-up they share (``graph``). The older TF frozen-graph / TFLite importers stay in conversion/."""
