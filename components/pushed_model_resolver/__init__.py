from components.pushed_model_resolver.component import PushedModelResolver

__all__ = ["PushedModelResolver"]
