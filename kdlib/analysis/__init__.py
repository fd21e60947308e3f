"""From artifacts to the book: loading runs, statistics and verdicts, the claims tables,
figures and the generated README and entry-page tables."""
