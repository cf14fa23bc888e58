"""Baselines: iDLG's single-label rule, bias-sign label existence and the two blind references.

One file per attack: :mod:`.idlg`, :mod:`.existence`, :mod:`.blind_uniform`, :mod:`.blind_prior`;
:mod:`.blind` holds what the two blind references share (both for a stack of batches).
"""
