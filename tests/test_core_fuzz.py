"""The compiled extension checks what its kernels rely on. Each _core kernel entry point is called
with a valid set of arguments (which must run), then with every argument spoiled one way at a time:
another dtype, another byte order, one element fewer, an extra dimension, a strided or misaligned
view, a read-only output, None, or an out-of-range integer. Each spoiled call must raise
TypeError/ValueError, unless it is listed below as a call the kernel can run correctly (a strided
input to a kernel that takes any strides), and no input may change. The sanitizer run of the suite
makes any out-of-bounds access by a spoiled call that slipped through fail."""

from __future__ import annotations

import numpy as np
import pytest

from numkern import _core

DTYPE_SWAP = {
    np.dtype(np.float64): np.float32,
    np.dtype(np.float32): np.float64,
    np.dtype(np.int8): np.uint8,
    np.dtype(np.uint8): np.int8,
    np.dtype(np.int32): np.int64,
    np.dtype(np.int64): np.int32,
    np.dtype(np.uint32): np.int32,
}


def _f64(rng, *shape):
    return rng.standard_normal(shape)


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _u8(rng, *shape):  # sign bytes
    return rng.integers(0, 2, shape, dtype=np.uint8)


def _i8(rng, *shape):
    return rng.integers(-128, 128, shape, dtype=np.int8)


def _csr(rng):
    return [np.array([0, 1, 2, 2, 4, 5, 6], np.int64), np.array([0, 1, 0, 1, 1, 0], np.int32), _f64(rng, 6)]


def _packed_features(rng, m, d):
    return rng.standard_normal((m // 32, d, 32))


# The refinement kernels' vectors are flat: any shape with the right number of elements.
_FLAT = {(1, "ndim"), (2, "ndim"), (4, "ndim"), (5, "ndim")}

# name -> (builder of a valid argument list, {(argument index, spoiling) that the kernel may accept})
CASES = {
    # convert and the flat-layout kernels (softmax_ext_partials' m and e, shiftquant's arrays) take
    # any shape with the right number of elements.
    "convert": (
        lambda r: [np.zeros(6, np.float64), _f32(r, 6)],
        {(0, "dtype"), (1, "dtype"), (0, "ndim"), (1, "ndim")},
    ),
    "scale_rows": (lambda r: [np.zeros((4, 3)), _f64(r, 4, 3), _f64(r, 4)], set()),
    "bandwidth_read": (
        lambda r: [_f64(r, 64)],
        {(0, "dtype"), (0, "byteorder"), (0, "short"), (0, "ndim"), (0, "misaligned")},
    ),
    "compute_probe": (lambda r: [5], set()),
    "softmax": (
        lambda r: [_f32(r, 3, 5), np.zeros((3, 5), np.float32), 1, 0, False],
        {(0, "strided"), (1, "strided")},
    ),
    "softmax_axes": (
        lambda r: [_f64(r, 3, 4, 5), np.zeros((3, 4, 5)), [0, 2], 0, False, False, r.random((3, 4, 5)) < 0.5],
        {(0, "strided"), (1, "strided"), (6, "strided"), (6, "none")},
    ),
    "softmax_backward": (
        lambda r: [_f32(r, 3, 6), _f32(r, 3, 6), np.zeros((3, 6), np.float32), [1], True, r.random((3, 6)) < 0.5],
        {(0, "strided"), (1, "strided"), (2, "strided"), (5, "strided"), (5, "none")},
    ),
    "softmax_ext_partials": (
        lambda r: [_f64(r, 3, 5), 1, np.zeros(3), np.zeros(3)],
        {(0, "strided"), (0, "dtype"), (2, "ndim"), (3, "ndim")},
    ),
    "softmax_scale_ext": (
        lambda r: [_f32(r, 3, 5), np.zeros((3, 5), np.float32), 1, _f64(r, 3), np.abs(_f64(r, 3)) + 1, True],
        {(0, "strided"), (1, "strided"), (3, "ndim"), (4, "ndim")},
    ),
    "norm_forward": (
        lambda r: [
            _f64(r, 3, 8),
            np.zeros((3, 8)),
            1,
            0,
            _f64(r, 8),
            _f64(r, 8),
            1e-5,
            False,
            _f64(r, 3, 8),
            np.zeros((3, 8)),
        ],
        {(0, "strided"), (1, "strided"), (5, "none"), (4, "none"), (8, "strided"), (9, "strided")},
    ),
    "norm_backward": (
        lambda r: [
            _f32(r, 3, 8),
            _f32(r, 3, 8),
            np.zeros((3, 8), np.float32),
            1,
            3,
            _f32(r, 8),
            np.zeros(8, np.float32),
            np.zeros(8, np.float32),
            1e-5,
        ],
        {(0, "strided"), (1, "strided"), (2, "strided"), (5, "none"), (6, "none"), (7, "none")},
    ),
    "l1_norm_int8": (
        lambda r: [_i8(r, 3, 8), np.zeros((3, 8), np.int8), 1, 5, False],
        {(0, "strided"), (1, "strided")},
    ),
    "int8_gemm": (
        lambda r: [_i8(r, 4, 6), _i8(r, 6, 5), np.zeros((4, 5)), 3, 0.5, _f64(r, 4), _f64(r, 5)],
        {(5, "none"), (6, "none")},
    ),
    "int8_pack_b": (lambda r: [_i8(r, 6, 5)], {(0, "short")}),  # any (K, N) int8 matrix is a B operand
    # The packed operand's header must name the active kernel, K and N, and its size; out's shape
    # gives N (one column fewer or more spoils it). A uint8 buffer has no misaligned spoiling of
    # its own: test_quant_prepack checks the alignment and the header.
    "int8_gemm_packed": (
        lambda r: [_i8(r, 4, 6), _core.int8_pack_b(_i8(r, 6, 5))[0], np.zeros((4, 5)), 3, 0.5, _f64(r, 4), _f64(r, 5)],
        {(5, "none"), (6, "none")},
    ),
    "shiftquant": (
        lambda r: [_f32(r, 4, 6), 1, 4, 6, 4, 5, 0, False, 7, False, np.zeros((4, 6), np.int8), np.zeros(4, np.uint8)],
        {(8, "big"), (0, "ndim"), (10, "ndim"), (11, "ndim")},  # the rounding key is any 64-bit value
    ),
    "unpack_int4": (
        lambda r: [r.integers(0, 256, (3, 4), dtype=np.uint8), np.zeros((3, 8), np.int8), 3, 4, 8],
        {(0, "ndim"), (1, "ndim")},
    ),
    "dp_pair_sum": (lambda r: [_f64(r, 5, 3), _f64(r, 2, 3), np.abs(_f64(r, 5)), 0, 1.0, np.zeros(2)], {(2, "none")}),
    "dp_rff_sum": (
        lambda r: [_f64(r, 5, 3), _packed_features(r, 64, 3), _f64(r, 64), 1e6, np.zeros(64, np.int64)],
        set(),
    ),
    "dp_rff_features": (lambda r: [_f64(r, 2, 3), _packed_features(r, 64, 3), _f64(r, 64), np.zeros((2, 64))], set()),
    "dp_l1_histogram": (
        lambda r: [np.abs(_f64(r, 5, 3)), np.zeros(3), np.full(3, 4.0), 8, np.zeros((3, 8), np.int64)],
        set(),
    ),
    # The ChaCha20 state is any 16 words; a 64-bit counter and stream id are part of it.
    "dp_chacha20": (lambda r: [r.integers(0, 2**32, 16, dtype=np.uint32), np.zeros((3, 16), np.uint32)], set()),
    # Noise: the parameter (a Laplace scale up to 2^52) is any count in range: 2^40 is one.
    "dp_noise": (
        lambda r: [r.integers(0, 2**32, 8, dtype=np.uint32), 0, 1000, np.zeros(5, np.int64)],
        {(2, "big"), (3, "short")},  # out of any length: that many samples
    ),
    # add_noise: x of either float dtype (out must match: a swapped x alone is refused), any grid
    # exponent in [-1000, 1000] (-1 is one), any scale in range (2^40 is one).
    "dp_add_noise": (
        lambda r: [_f64(r, 5), 0, r.integers(0, 2**32, 8, dtype=np.uint32), 0, 1000, np.zeros(5)],
        {(1, "negative"), (4, "big")},
    ),
    # fwht takes either float dtype and any power-of-two length (8 x 3 shortened is 1 x 23).
    "fwht_cols": (lambda r: [_f64(r, 8, 3), 1.0], {(0, "dtype"), (0, "short")}),
    "fwht_rows": (lambda r: [_f32(r, 3, 8), 1.0], {(0, "dtype")}),
    "srht_apply": (
        lambda r: [
            _f64(r, 6, 2),
            8,
            r.permutation(6).astype(np.int64),
            r.integers(0, 2, 8, dtype=np.uint8),
            np.array([0, 3, 7], np.uint32),
            0.5,
            np.zeros((3, 2)),
        ],
        # N is any power of two (the kernel's buffers are bounded by its block); neg needs a sign per row of a.
        {(1, "big"), (3, "short")},
    ),
    # A key is any 64-bit value, as is the first row index of a tile.
    "gaussian_apply": (lambda r: [_f64(r, 6, 2), 3, 1.0, np.zeros((4, 2)), 0], {(1, "big"), (4, "big")}),
    "gaussian_apply_pair": (
        lambda r: [_f64(r, 6, 2), _f64(r, 6, 1), 3, 1.0, np.zeros((4, 3)), 0],
        {(2, "big"), (5, "big")},  # a key and a first row index are any 64-bit values
    ),
    "gaussian_rows": (lambda r: [0, 3, 1, 4, 9], {(0, "big"), (2, "big"), (4, "big")}),
    "sparse_apply": (
        lambda r: [_f64(r, 6, 2), r.integers(0, 4, (6, 2)).astype(np.int64), _u8(r, 6, 2), 0.5, np.zeros((4, 2))],
        set(),
    ),
    # The transposed sketches: v (m, k) and out (n, k) float64. N is any power of two >= n (2^40
    # included) and neg needs a sign per row of out; a Gaussian key is any 64-bit value.
    "srht_transpose": (
        lambda r: [
            _f64(r, 3, 2),
            8,
            r.permutation(6).astype(np.int64),
            r.integers(0, 2, 8, dtype=np.uint8),
            np.array([0, 3, 7], np.uint32),
            0.5,
            np.zeros((6, 2)),
        ],
        {(1, "big"), (3, "short")},
    ),
    "gaussian_transpose": (lambda r: [_f64(r, 4, 2), 3, 1.0, np.zeros((6, 2))], {(1, "big")}),
    "sparse_transpose": (
        lambda r: [_f64(r, 4, 2), r.integers(0, 4, (6, 2)).astype(np.int64), _u8(r, 6, 2), 0.5, np.zeros((6, 2))],
        set(),
    ),
    # The stream key is any 64-bit value.
    "sparse_sign_draw": (lambda r: [7, 0, 5, 4, 2], {(0, "big")}),
    "random_permutation": (lambda r: [7, 10, 2], {(0, "big")}),
    # CSR operands: a 6 x 2 matrix with one empty row; indptr int64, indices int32, data float.
    "csr_sketch_apply": (
        lambda r: [*_csr(r), r.integers(0, 4, (6, 2)).astype(np.int64), _u8(r, 6, 2), 0.5, np.zeros((4, 2))],
        {(2, "dtype")},  # float32 data sketched in float64
    ),
    "csr_row_residual": (
        lambda r: [*_csr(r), _f64(r, 2), _f64(r, 6), np.zeros(2), np.zeros(6)],
        {(4, "none"), (5, "none"), (6, "none"), (2, "dtype")},  # float32 data with float64 vectors
    ),
    "csr_ls_refine_residual": (
        lambda r: [*_csr(r), _f64(r, 2), np.zeros(6), True, _f64(r, 6), np.zeros(6), np.zeros(2)],
        {(2, "dtype")},  # float32 data
    ),
    "row_residual": (
        lambda r: [_f64(r, 6, 2), _f64(r, 2), _f64(r, 6), np.zeros(2), np.zeros(6)],
        # A float32 a with float64 vectors is the mixed (float32-stored) pass.
        {(2, "none"), (3, "none"), (4, "none"), (1, "ndim"), (2, "ndim"), (3, "ndim"), (4, "ndim"), (0, "dtype")},
    ),
    # The refinement kernels are float64 only; their inputs are converted (a copy), outputs never.
    "ls_refine_residual": (
        lambda r: [_f64(r, 6, 2), _f64(r, 2), np.zeros(6), True, _f64(r, 6), np.zeros(6), np.zeros(2)],
        {(0, "dtype"), (0, "byteorder"), (1, "dtype"), (1, "byteorder"), (4, "dtype"), (4, "byteorder"), (6, "ndim")}
        | _FLAT,
    ),
    "ls_refine_partials": (
        lambda r: [_f64(r, 6, 2), _f64(r, 2), np.zeros(6), True, _f64(r, 6), np.zeros(6), np.zeros((1, 3, 2))],
        {(0, "dtype"), (0, "byteorder"), (1, "dtype"), (1, "byteorder"), (4, "dtype"), (4, "byteorder")} | _FLAT,
    ),
    "ls_refine_merge": (lambda r: [_f64(r, 2, 3, 4), np.zeros(4)], {(0, "dtype"), (0, "byteorder"), (1, "ndim")}),
    "dp_l1_query": (
        lambda r: [
            _f64(r, 2, 4, 3),
            np.zeros(2),
            np.ones(2),
            np.full(2, 0.25),
            np.full(2, 4.0),
            np.full(2, 9.0),
            4,
            1.0,
            np.abs(_f64(r, 3, 2)),
            np.zeros(3),
        ],
        {(0, "ndim")},  # the table is read as a flat (d, L, 3) block
    ),
}
# Integer arguments that are sizes, codes or counts, and the scalar values that spoil them.
BAD_INTS = [-1, 2**40]


def _spoilings(a):
    """(name, spoiled value) pairs for one argument."""
    if isinstance(a, np.ndarray):
        yield "dtype", a.astype(DTYPE_SWAP.get(a.dtype, np.float64))
        if a.dtype.itemsize > 1:
            yield "byteorder", a.astype(a.dtype.newbyteorder())
        if a.size:
            yield "short", a.reshape(-1)[:-1].copy().reshape((-1,) if a.ndim == 1 else (1, -1))
        yield "ndim", a[None].copy()
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        wide[..., ::2] = a
        yield "strided", wide[..., ::2]
        if a.dtype.itemsize > 1:
            buf = np.zeros(a.nbytes + 1, np.uint8)
            mis = np.frombuffer(buf.data, a.dtype, a.size, offset=1).reshape(a.shape)
            mis.setflags(write=True) if mis.base.flags.writeable else None
            mis[...] = a
            yield "misaligned", mis
        ro = a.copy()
        ro.setflags(write=False)
        yield "readonly", ro
        yield "none", None
    elif isinstance(a, list):
        yield "no axes", []
        yield "axis out of range", [7]
        yield "repeated axis", a + a
    elif isinstance(a, (int, np.integer)) and not isinstance(a, bool):
        yield "negative", -1
        yield "big", 2**40


@pytest.mark.parametrize("name", sorted(CASES))
def test_core_entry_points_check_their_arguments(name, rng):
    build, may_run = CASES[name]
    fn = getattr(_core, name)
    fn(*build(np.random.default_rng(0)))  # the valid call runs
    accepted = []
    for i, arg in enumerate(build(np.random.default_rng(0))):
        for how, bad in _spoilings(arg):
            if how == "readonly" and not _writes(name, i):
                continue  # a read-only input is a valid input
            args = build(np.random.default_rng(0))
            args[i] = bad
            inputs = [(j, a.copy()) for j, a in enumerate(args) if isinstance(a, np.ndarray) and not _writes(name, j)]
            try:
                fn(*args)
            except (TypeError, ValueError):
                pass
            else:
                accepted.append((i, how))
            for j, before in inputs:
                np.testing.assert_array_equal(args[j], before, err_msg=f"{name}: input {j} changed")
    assert set(accepted) <= may_run, f"{name} ran with spoiled arguments {sorted(set(accepted) - may_run)}"


# Argument positions each entry point writes.
OUTPUTS = {
    "softmax_axes": {1},
    "softmax_backward": {2},
    "bandwidth_read": set(),
    "compute_probe": set(),
    "gaussian_rows": set(),
    "ls_refine_residual": {2, 5, 6},
    "ls_refine_partials": {2, 5, 6},
    "dp_l1_query": {9},
    "convert": {0},
    "scale_rows": {0},
    "softmax": {1},
    "softmax_ext_partials": {2, 3},
    "softmax_scale_ext": {1},
    "norm_forward": {1, 9},
    "norm_backward": {2, 6, 7},
    "l1_norm_int8": {1},
    "int8_gemm": {2},
    "int8_pack_b": set(),
    "int8_gemm_packed": {2},
    "shiftquant": {10, 11},
    "unpack_int4": {1},
    "dp_pair_sum": {5},
    "dp_rff_sum": {4},
    "dp_rff_features": {3},
    "dp_l1_histogram": {4},
    "dp_chacha20": {1},
    "dp_noise": {3},
    "dp_add_noise": {5},
    "fwht_cols": {0},
    "fwht_rows": {0},
    "srht_apply": {6},
    "gaussian_apply": {3},
    "gaussian_apply_pair": {4},
    "sparse_apply": {4},
    "row_residual": {3, 4},
    "csr_sketch_apply": {6},
    "srht_transpose": {6},
    "gaussian_transpose": {3},
    "sparse_transpose": {4},
    "sparse_sign_draw": set(),
    "random_permutation": set(),
    "csr_row_residual": {5, 6},
    "csr_ls_refine_residual": {4, 7, 8},
    "ls_refine_merge": {1},
}


def _writes(name, i):
    return i in OUTPUTS[name]


def test_every_kernel_entry_point_is_fuzzed():
    kernels = {
        n
        for n in dir(_core)
        if not n.startswith("_")
        and callable(getattr(_core, n))
        and n
        not in {
            "cpu_features",
            "detected_isa",
            "active_isa",
            "set_isa",
            "kernel_names",
            "isa_levels",
            "target_arch",
            "threading",
            "get_num_threads",
            "set_num_threads",
            "get_max_threads",
            "get_thread_limit",
            "set_thread_limit",
            "available_cpus",
            "pool_threads_started",
            "gemm_kernel",
            "softmax_fast",  # checks every argument and returns None for the Python layer's general path
        }
    }
    assert kernels <= set(CASES), sorted(kernels - set(CASES))
