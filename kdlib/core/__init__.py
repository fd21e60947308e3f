"""The learning itself, Sections 2-3: MNIST and transfer sets, the networks, the loss and
its gradient, one training step, the loop, error counts, and the building blocks of the
studies of Sections 4-6 (subsets, ensembles, specialists)."""
