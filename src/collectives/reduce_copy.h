// The host data path's one reduction entry point, used by the primitives.
#pragma once

#include <cstddef>

#include "collectives/reduce_ops.h"

namespace chorus {

// dst[i] = post( (peer ? peer[i] ⊕ pre(local[i]) : pre(local[i])) )
//   pre  = multiply by the scalar for PreMulSum, identity otherwise; applied only when applyPre
//   post = divide by the divisor for SumPostDiv, identity otherwise; applied only when applyPost
// peer may be null (a copy with pre/post); dst may alias local or peer (in place). count elements of op.type.
// Buffers may not otherwise overlap. Loops are vectorized (SSE2 baseline);
// any alignment of the element type is fine.
void reduceCopy(const RedOpArgs& op, const void* peer, const void* local, bool applyPre,
                void* dst, bool applyPost, size_t count);

}  // namespace chorus
