"""Release artifacts: the store wheels and charts live in, bounded waits for them, and the names a version takes."""
