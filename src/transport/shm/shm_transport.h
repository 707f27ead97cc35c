// shm: the FIFO lives in a POSIX shared-memory segment that the receiver
// creates and the sender maps; used between ranks of one host (ranks that
// are threads of one process included). The receiver creates the segment,
// faults it in once, and names it in its ConnectInfo; the sender maps it and
// unlinks the name, so that nothing is left in /dev/shm once both ends hold
// it.
#pragma once

#include <memory>

#include "transport/transport.h"

namespace chorus {

std::unique_ptr<Transport> makeShmTransport();

}  // namespace chorus
