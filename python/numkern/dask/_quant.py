def matmul(*a, **k):
    raise NotImplementedError
