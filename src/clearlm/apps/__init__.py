"""Applications on the pipeline: each owns its state (its tables, its YAML configuration), hands the
pipeline a context and turns the result back into its state; none calls a backend directly.

- ``support``: customers and their histories, YAML dialog flows, tools, hand-off (issue 15).
- ``classroom``: rubrics, grading with evidence, knowledge tracing and spaced review (issue 16).
"""
