"""Data: built-in and user corpora, safe text I/O, tokenizers (character, byte-level BPE). Imports only lm.errors."""
