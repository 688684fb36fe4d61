// Translation unit that carries the shared Torch precompiled header.
