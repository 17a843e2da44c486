"""python -m services.media: the media gRPC server (+ HTTP uploads/downloads and ops)."""

from .memory import tune_allocator

if __name__ == "__main__":
    # first, before gRPC, pymongo and Kafka start threads that would each get a heap of their own
    allocator_tuned = tune_allocator()
    from .server import main

    main(allocator_tuned)
