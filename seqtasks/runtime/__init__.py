"""The machinery under the commands: building tasks from configs and checkpoints (build), safe
checkpoints and exported model directories (checkpoint, digest, model_dir), resuming and the run
directory's record (resume, run_record), choosing the metric that selects checkpoints (monitor),
precision, freed memory kept for reuse in training (allocator), loggers and what goes to them
(loggers, dashboards), the run's report (report), several trained models run as one at decode time
(ensemble), and writing files safely (atomic, paths)."""
