// The host data path's one reduction entry point, used by the primitives.
#pragma once

#include <cstddef>

#include "collectives/reduce_ops.h"

namespace chorus {

// dst[i] = post( (peer ? peer[i] ⊕ pre(local[i]) : pre(local[i])) )
//   pre  = multiply by the scalar for PreMulSum, identity otherwise; applied only when applyPre
//   post = divide by the divisor for SumPostDiv, identity otherwise; applied only when applyPost
// peer may be null (a copy with pre/post); dst may alias local or peer (in place). count elements of op.type.
// Buffers may not otherwise overlap; pointers are aligned to the element size.
void reduceCopy(const RedOpArgs& op, const void* peer, const void* local, bool applyPre,
                void* dst, bool applyPost, size_t count);

// Whether reduceCopy runs wider loops than the baseline on this CPU (AVX2 on
// x86-64; results are the same either way).
bool reduceCopyHasWideLoops();
// For tests and benchmarks: use only the baseline loops (SSE2 on x86-64).
void reduceCopyForceBaseline(bool force);

}  // namespace chorus
