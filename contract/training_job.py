"""What the Trainer's launcher tells the replicas of a multi-worker training it starts
(components/multi_worker_trainer/), beside TF_CONFIG: environment variable names."""

# The backup folder the launcher claimed (locked) for the training; every replica uses it.
BACKUP_ENV = "ALEXNET_TFX_TRAINING_BACKUP"
# A file the chief appends its progress records to, as JSON lines, for the launcher's console.
PROGRESS_ENV = "ALEXNET_TFX_TRAINING_PROGRESS"
