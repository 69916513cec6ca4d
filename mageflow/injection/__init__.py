"""Type-driven injection: decide at decoration time, assemble at run time.

``plan`` analyses a task function once; ``resolve`` builds each call's
arguments from that analysis; ``hints`` turns annotations into types.
"""

from mageflow.injection.plan import InjectionPlan, PlanCell, build_plan, explain

__all__ = ["InjectionPlan", "PlanCell", "build_plan", "explain"]
