// Which ranks share a host: a hash of the host name and the kernel's boot id,
// so that two containers with the same host name on different machines (or a
// rebooted machine) are told apart.
#pragma once

#include <cstdint>

namespace chorus {

uint64_t hostIdentity();

}  // namespace chorus
