// A TCP port for MASTER_PORT that nobody listens on.
#pragma once

#include <string>

namespace chorus {
namespace launcher {

// Binds port 0 on `addr` (a numeric address or a host name of this machine),
// reads the port the kernel chose and closes the socket. Rank 0 binds the port
// again a moment later; a process that takes it in between makes the job fail
// at bootstrap, and --port avoids the race. False with *error on failure (for
// instance an address that is not on this machine).
bool findFreePort(const std::string& addr, int* port, std::string* error);

}  // namespace launcher
}  // namespace chorus
