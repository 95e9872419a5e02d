"""Window plans: which frames each model call of a denoising step outputs and attends to."""
from .plan import PlanCache, plan, recipe_for
from .window import Window

__all__ = ["PlanCache", "plan", "recipe_for", "Window"]
