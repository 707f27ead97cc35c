#include "topology/host_identity.h"

#include <sys/stat.h>
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
  struct stat shm {};
  if (stat("/dev/shm", &shm) == 0) identity += "/dev/shm:" + std::to_string(shm.st_dev);
  return hashBytes(identity.data(), identity.size());
}

uint64_t pidNamespace() {
  struct stat ns {};
  if (stat("/proc/self/ns/pid", &ns) != 0) return 0;
  return static_cast<uint64_t>(ns.st_ino);
}

}  // namespace chorus
