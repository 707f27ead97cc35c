// Group semantics (ncclGroupStart/ncclGroupEnd) for work that must not block
// the calling thread one call at a time: a thread that creates several
// communicators inside a group (as nccl-tests does with -g) would otherwise
// wait in the first init for ranks it has not created yet.
//
// Groups nest per thread; work added inside one is deferred to the outermost
// ncclGroupEnd, which runs every job on its own thread at once. Blocking
// jobs are joined before ncclGroupEnd returns; a job for a communicator with
// config.blocking = 0 keeps running and ncclGroupEnd returns ncclInProgress.
#pragma once

#include <functional>

#include "nccl.h"
#include "runtime/op.h"

struct ncclComm;

namespace chorus {

bool inGroup();
ncclResult_t groupStart();
ncclResult_t groupEnd();

// Runs `job` for `comm` (which may be null for jobs that create nothing) as
// the caller's mode asks: deferred inside a group, on comm's background
// thread when it is non-blocking (returns ncclInProgress), else right away.
// A failed job's result becomes comm->asyncResult (see commState). `uses`:
// another communicator the job needs (a split's parent), which then may not
// be destroyed while the job waits in a group.
ncclResult_t runCommJob(ncclComm* comm, std::function<ncclResult_t()> job,
                        const ncclComm* uses = nullptr);

// For the API's argument checks: a call refused inside a group makes the
// outermost ncclGroupEnd fail with `result` without running the group's
// operations (as NCCL does). Returns `result`.
ncclResult_t refuseInGroup(ncclResult_t result);

// Whether this thread's open group holds work (operations, an init or a
// split) for `comm`, which then must outlive the outermost ncclGroupEnd.
bool groupHoldsWork(const ncclComm* comm);
// Drops that work (ncclCommAbort): it will not run.
void dropGroupWork(ncclComm* comm);

// Posts an operation: inside a group it runs at the outermost ncclGroupEnd,
// together with the group's other operations; otherwise it runs now (on a
// non-blocking communicator: in the background, returning ncclInProgress).
ncclResult_t enqueueOp(ncclComm* comm, const Op& op);

}  // namespace chorus
