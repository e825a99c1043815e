"""Readers and writers, one module per file format (FASTA, BED, bigWig, JSON records)."""
