"""The runner side every pipeline shares: the Task interface, typed configs, the runner
(strategy, training, exact resume, evaluation), tracking, export and batch prediction."""
