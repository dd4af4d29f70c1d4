// This machine's own limits, measured the way the kernels run: the fp32 FMA peak (what
// prefill is held to) and the read bandwidth (what decode is held to). `dsv3 bench` measures
// the model against them in the same run.
#pragma once

#include "threading/pool.h"

namespace dsv3::kernels {

//! Peak fp32 FMA rate of the calling thread with the active ISA, in GFLOP/s, over at least
//! `seconds`.
double probe_fma_gflops(double seconds);

//! The sum over every pool thread of probe_fma_gflops(seconds), run at the same time.
double probe_fma_gflops_all(ThreadPool& pool, double seconds);

//! Peak BF16 dot-product rate (the `--numerics bf16` products: vdpbf16ps where the CPU has
//! it, else its emulation) of every pool thread at once, in GFLOP/s (2 per multiply-add).
double probe_bf16_gflops_all(ThreadPool& pool, double seconds);

//! Read bandwidth over a 1 GiB buffer with every pool thread reading, in GB/s: the best of
//! several access patterns (1, 2, 4 and 8 streams per thread, with and without software
//! prefetch), each the best of 3 runs, so decode is measured against the highest rate this
//! machine shows. Allocates (and frees) the 1 GiB.
double probe_read_gb_per_s(ThreadPool& pool);

}  // namespace dsv3::kernels
