"""tinylstm.codegen: the C back end.

Emitters return ``{filename: text}`` and never touch disk; :mod:`.writer` writes them
atomically. Identifiers and comments from the model pass through :mod:`.names`.
"""
