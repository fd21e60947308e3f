"""From recipes to artifacts: the student recipe, every experiment's run configs, the search
that chose the recipe, running and storing runs with their provenance, and the history of
earlier recipes."""
