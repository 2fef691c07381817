"""Thin Tornado handlers: parse, authorise, call one use-case, encode."""
