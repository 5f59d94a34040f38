"""The classroom (issue 16): rubric grading with evidence and a teacher in the loop.

So far: rubrics in YAML (:mod:`clearlm.apps.classroom.rubrics`), analytic rubrics whose total points map
to the 0-2 score, loaded and checked as a whole. The evaluation set lives in
``benchmarks/data/grading/`` (its README says how it was written and scored).
"""

from clearlm.apps.classroom.rubrics import (
    Criterion,
    Level,
    Rubric,
    RubricError,
    load_rubric,
    load_rubrics,
    parse_rubric,
)

__all__ = ["Criterion", "Level", "Rubric", "RubricError", "load_rubric", "load_rubrics", "parse_rubric"]
