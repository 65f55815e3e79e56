from components.serving_check.component import ServingCheck

__all__ = ["ServingCheck"]
