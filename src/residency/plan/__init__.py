"""Terraform plan and state JSON (`terraform show -json`) in, an `Inventory` out.

The pre-deployment counterpart of the collectors: what *will* exist after apply, located
as Terraform decides it. Anything Terraform cannot know before apply fails closed.
"""

from __future__ import annotations

from residency.plan.reader import PlanContext, load_plan, load_plans, read_plan

__all__ = ["PlanContext", "load_plan", "load_plans", "read_plan"]
