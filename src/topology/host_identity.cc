#include "topology/host_identity.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "common/hash.h"

namespace chorus {

uint64_t hostIdentity() {
  char host[256] = "";
  gethostname(host, sizeof(host) - 1);
  std::string identity = host;
  if (FILE* f = fopen("/proc/sys/kernel/random/boot_id", "r")) {
    char boot[64] = "";
    if (fgets(boot, sizeof(boot), f)) identity += boot;
    fclose(f);
  }
  return hashBytes(identity.data(), identity.size());
}

}  // namespace chorus
