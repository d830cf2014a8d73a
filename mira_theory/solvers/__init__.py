"""Generic solvers (one algorithm per module) and adapters to nashpy and pygambit."""
