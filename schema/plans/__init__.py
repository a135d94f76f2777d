"""Storefront reads without graphql-core's per-field cost: documents parsed and validated once
per text (documents.py), and covered queries compiled once into plans (compile.py) that load
their rows in a fixed number of statements and build the response directly (run.py), hooked
in as a schema extension (extension.py). Anything a plan does not cover runs normally."""

from schema.plans.documents import DocumentCache, Documents
from schema.plans.extension import CompiledPlans, Plans

__all__ = ["CompiledPlans", "DocumentCache", "Documents", "Plans"]
