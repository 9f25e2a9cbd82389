"""`lmtailor augment`: more training examples from the ones a user has, for small label sets (issue 28)."""
