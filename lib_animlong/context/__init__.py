"""Window plans: which frames each model call of a denoising step outputs and attends to."""
from .plan import fit_to_positional_table, plan, recipe_for
from .window import Window

__all__ = ["fit_to_positional_table", "plan", "recipe_for", "Window"]
