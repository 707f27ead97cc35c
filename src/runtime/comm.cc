#include "runtime/comm.h"

#include "common/result.h"

namespace chorus {

ncclResult_t checkComm(const ncclComm* comm, const char* caller) {
  if (comm == nullptr) CHORUS_FAIL(ncclInvalidArgument, "%s: comm is NULL", caller);
  if (comm->alive != ncclComm::kAlive)
    CHORUS_FAIL(ncclInvalidArgument, "%s: comm %p is not a live communicator (destroyed?)", caller,
                static_cast<const void*>(comm));
  return ncclSuccess;
}

void freeComm(ncclComm* comm) {
  if (comm->backgroundThread.joinable()) comm->backgroundThread.join();
  comm->alive = 0;
  delete comm;
}

}  // namespace chorus
