"""One-shot bootstrap of a new deployment: the first admin and the category tree."""
