from components.atomic_pusher.component import AtomicPusher

__all__ = ["AtomicPusher"]
