"""The classical baseline every build must beat: TF-IDF + logistic regression (cls), a CRF (ner); `stage` runs it."""
