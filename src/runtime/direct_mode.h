// Which DirectMode one host operation of the direct algorithms runs in,
// and the sizes that decide it. Every rank decides alike: the inputs are
// agreed settings and the operation's arguments, which every rank's meeting
// record checks before any data is read.
#pragma once

#include <cstddef>

#include "collectives/direct_primitives.h"
#include "runtime/agreed_settings.h"
#include "runtime/op.h"

namespace chorus {

// Whether operations may copy through the kernel (state->crossMemory), and
// for which sizes (state->cma*Bytes).
void setKernelCopyLimits(const AgreedSettings& settings, DirectState* state);

// The mode of an operation of `kind` whose buffers on this rank hold
// `inputBytes` and `outputBytes`; one-shot AllReduce reads every input while
// ranks write their outputs, so its inputs are staged copies (or lent,
// where they are not their ranks' outputs: lendsBuffers).
DirectMode directModeFor(const DirectState& state, OpKind kind, size_t inputBytes,
                         size_t outputBytes, bool oneShot);

// Whether ranks lend registered buffers (DirectPrims::shareBuffers) in an
// operation of `kind` and `mode` with these buffer sizes: through the
// kernel always, staged from state.lendStaged*Bytes (one-shot AllReduce
// too, see lentSides). Every rank decides alike, whichever buffers it has
// registered: such an operation ends with one more arrival of every rank.
bool lendsBuffers(const DirectState& state, OpKind kind, DirectMode mode, size_t inputBytes,
                  size_t outputBytes);

// Which of its buffers a rank offers where ranks lend (each still only if
// registered): both, except in one-shot AllReduce, where peers read every
// rank's input while it writes its output: there an input that is its
// output is a staged copy, and no one reads an output.
struct LentSides {
  bool input = true;
  bool output = true;
};
LentSides lentSides(bool oneShot, bool inPlace);

}  // namespace chorus
