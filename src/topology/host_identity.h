// Which ranks can share memory, and whose process ids mean the same to us.
//
// hostIdentity: a hash of the host name, the kernel's boot id and the device
// of /dev/shm. Ranks with the same identity meet in named shared memory, so
// two containers with the same host name on different machines (or a
// rebooted machine) are told apart, and so are two containers on one machine
// that each have their own /dev/shm (started without a shared IPC
// namespace): they talk over sockets instead of failing to open each
// other's segments.
//
// processToken: a random number drawn once per process (again in a child of
// fork). Two processes in containers with their own pid namespaces may have
// the same pid (both 1, say), so the token, not the pid, tells processes
// apart and makes the names of shared-memory segments unique.
//
// pidNamespace: the inode of this process's pid namespace (0 if unknown):
// a pid can be probed (is that process gone?) only from its own namespace.
#pragma once

#include <cstdint>

namespace chorus {

uint64_t hostIdentity();
uint64_t processToken();
uint64_t pidNamespace();

}  // namespace chorus
