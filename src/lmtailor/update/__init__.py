"""`lmtailor update`: keep a built model current with new documents and data, with a regression report."""
