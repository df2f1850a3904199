"""Clipping-Free Policy Optimization (CFPO, arXiv 2601.22801) for OpenRLHF 0.11.2."""

__version__ = "0.1.0"
